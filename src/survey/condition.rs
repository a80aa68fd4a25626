//! `show_if` conditions: a small expression language over earlier answers.
//!
//! Grammar (keywords are lower case):
//! ```text
//! expr       := and_expr ("or" and_expr)*
//! and_expr   := unary ("and" unary)*
//! unary      := "not" unary | primary
//! primary    := "(" expr ")" | "answered" "(" ref ")" | literal "in" ref | ref op literal
//! op         := "==" | "!=" | "<" | "<=" | ">" | ">="
//! ref        := question_id | question_id "." row_code      (a matrix row)
//! literal    := "double quoted" | 'single quoted' | number | true | false
//! ```
//! A comparison with a question that is unanswered (or itself hidden) is false.
//!
//! A condition nests at most [`MAX_NESTING`] levels of parentheses and `not`, and has at most
//! [`MAX_TESTS`] tests: parsing and evaluating recurse, so a deeper one is refused with an error
//! rather than overflowing the stack.

use std::fmt;

/// How deeply parentheses and `not` may nest.
pub const MAX_NESTING: usize = 32;
/// How many tests (comparisons, `in`, `answered`) one condition may combine.
pub const MAX_TESTS: usize = 256;

/// What a condition reads from a response: the effective answers of earlier questions.
pub trait AnswerLookup {
    /// The single value of a scalar question, or of one matrix row (`row` is `Some`).
    fn scalar(&self, question: &str, row: Option<&str>) -> Option<String>;
    /// Whether a multiple-choice question has the option selected.
    fn selected(&self, question: &str, option: &str) -> bool;
    /// Whether the question has any answer.
    fn answered(&self, question: &str) -> bool;
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Text(t) => write!(f, "\"{t}\""),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A reference to an earlier question, with its byte offset inside the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionRef {
    pub question: String,
    pub row: Option<String>,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare {
        target: QuestionRef,
        op: CompareOp,
        value: Literal,
    },
    Contains {
        target: QuestionRef,
        option: String,
    },
    Answered(QuestionRef),
    Not(Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    /// Byte offset inside the expression text.
    pub offset: usize,
}

impl Condition {
    pub fn parse(input: &str) -> Result<Condition, ParseError> {
        let tokens = tokenize(input)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            end: input.len(),
            depth: 0,
            tests: 0,
        };
        let cond = parser.expr()?;
        match parser.peek() {
            None => Ok(cond),
            Some((tok, offset)) => Err(ParseError {
                message: format!("unexpected {tok} after the end of the condition"),
                offset: *offset,
            }),
        }
    }

    /// Every question the condition reads.
    pub fn references(&self) -> Vec<&QuestionRef> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    /// Every `"option" in question` membership test, for checking option codes.
    pub fn memberships(&self) -> Vec<(&QuestionRef, &str)> {
        let mut out = Vec::new();
        self.walk(&mut |c| {
            if let Condition::Contains { target, option } = c {
                out.push((target, option.as_str()));
            }
        });
        out
    }

    /// Every comparison, for checking the literal against the question's type.
    pub fn comparisons(&self) -> Vec<(&QuestionRef, CompareOp, &Literal)> {
        let mut out = Vec::new();
        self.walk(&mut |c| {
            if let Condition::Compare { target, op, value } = c {
                out.push((target, *op, value));
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Condition)) {
        f(self);
        match self {
            Condition::Not(inner) => inner.walk(f),
            Condition::And(a, b) | Condition::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            _ => {}
        }
    }

    fn collect_refs<'a>(&'a self, out: &mut Vec<&'a QuestionRef>) {
        self.walk(&mut |c| match c {
            Condition::Compare { target, .. }
            | Condition::Contains { target, .. }
            | Condition::Answered(target) => out.push(target),
            _ => {}
        });
    }

    pub fn evaluate(&self, answers: &dyn AnswerLookup) -> bool {
        match self {
            Condition::Not(inner) => !inner.evaluate(answers),
            Condition::And(a, b) => a.evaluate(answers) && b.evaluate(answers),
            Condition::Or(a, b) => a.evaluate(answers) || b.evaluate(answers),
            Condition::Answered(target) => answers.answered(&target.question),
            Condition::Contains { target, option } => answers.selected(&target.question, option),
            Condition::Compare { target, op, value } => {
                let Some(actual) = answers.scalar(&target.question, target.row.as_deref()) else {
                    return false;
                };
                compare(&actual, *op, value)
            }
        }
    }
}

fn compare(actual: &str, op: CompareOp, expected: &Literal) -> bool {
    use std::cmp::Ordering;
    let ordering = match expected {
        Literal::Number(n) => match actual.trim().parse::<f64>() {
            Ok(a) => a.partial_cmp(n),
            Err(_) => None,
        },
        // Yes/no questions store "yes"/"no".
        Literal::Bool(b) => Some(actual.cmp(if *b { "yes" } else { "no" })),
        // Dates are ISO 8601 and compare correctly as text.
        Literal::Text(t) => Some(actual.cmp(t.as_str())),
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Text(String),
    Number(f64),
    Op(CompareOp),
    LParen,
    RParen,
    Dot,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(s) => write!(f, "'{s}'"),
            Token::Text(s) => write!(f, "text \"{s}\""),
            Token::Number(n) => write!(f, "number {n}"),
            Token::Op(_) => write!(f, "comparison operator"),
            Token::LParen => write!(f, "'('"),
            Token::RParen => write!(f, "')'"),
            Token::Dot => write!(f, "'.'"),
        }
    }
}

fn tokenize(input: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let bytes = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((Token::LParen, start));
                i += 1;
            }
            b')' => {
                out.push((Token::RParen, start));
                i += 1;
            }
            b'.' => {
                out.push((Token::Dot, start));
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    (b'=', Some(b'=')) => (CompareOp::Eq, 2),
                    (b'!', Some(b'=')) => (CompareOp::Ne, 2),
                    (b'<', Some(b'=')) => (CompareOp::Le, 2),
                    (b'>', Some(b'=')) => (CompareOp::Ge, 2),
                    (b'<', _) => (CompareOp::Lt, 1),
                    (b'>', _) => (CompareOp::Gt, 1),
                    _ => {
                        return Err(ParseError {
                            message:
                                "expected '==' or '!=' (a single '=' or '!' is not an operator)"
                                    .into(),
                            offset: start,
                        })
                    }
                };
                out.push((Token::Op(op), start));
                i += len;
            }
            b'"' | b'\'' => {
                let quote = c;
                let rest = &input[i + 1..];
                match rest.find(quote as char) {
                    Some(end) => {
                        out.push((Token::Text(rest[..end].to_string()), start));
                        i += end + 2;
                    }
                    None => {
                        return Err(ParseError {
                            message: "text is not closed by a matching quote".into(),
                            offset: start,
                        })
                    }
                }
            }
            b'0'..=b'9' | b'-' => {
                let mut end = i + 1;
                while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
                    end += 1;
                }
                let text = &input[i..end];
                let n = text.parse::<f64>().map_err(|_| ParseError {
                    message: format!("'{text}' is not a number"),
                    offset: start,
                })?;
                out.push((Token::Number(n), start));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = i + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                out.push((Token::Ident(input[i..end].to_string()), start));
                i = end;
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(ParseError {
                    message: format!("unexpected character '{ch}'"),
                    offset: start,
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    end: usize,
    /// Parentheses and `not` open around the current position.
    depth: usize,
    /// Tests read so far.
    tests: usize,
}

impl Parser {
    fn peek(&self) -> Option<&(Token, usize)> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<(Token, usize)> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn at_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some((Token::Ident(w), _)) if w == word)
    }

    fn error_here(&self, expected: &str) -> ParseError {
        match self.peek() {
            Some((tok, offset)) => ParseError {
                message: format!("expected {expected}, found {tok}"),
                offset: *offset,
            },
            None => ParseError {
                message: format!("expected {expected}, found the end of the condition"),
                offset: self.end,
            },
        }
    }

    fn expr(&mut self) -> Result<Condition, ParseError> {
        let mut left = self.and_expr()?;
        while self.at_keyword("or") {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Condition, ParseError> {
        let mut left = self.unary()?;
        while self.at_keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// Enter a level of parentheses or `not`, refusing to go deeper than [`MAX_NESTING`].
    fn nest(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let offset = self.peek().map_or(self.end, |(_, offset)| *offset);
            return Err(ParseError {
                message: format!(
                    "the condition nests more than {MAX_NESTING} levels of parentheses and 'not'"
                ),
                offset,
            });
        }
        Ok(())
    }

    /// Count one test, refusing more than [`MAX_TESTS`].
    fn test(&mut self) -> Result<(), ParseError> {
        self.tests += 1;
        if self.tests > MAX_TESTS {
            let offset = self.peek().map_or(self.end, |(_, offset)| *offset);
            return Err(ParseError {
                message: format!("the condition has more than {MAX_TESTS} tests"),
                offset,
            });
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Condition, ParseError> {
        if self.at_keyword("not") {
            self.nest()?;
            self.pos += 1;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, ParseError> {
        if !matches!(self.peek(), Some((Token::LParen, _))) {
            self.test()?;
        }
        match self.peek().cloned() {
            Some((Token::LParen, _)) => {
                self.nest()?;
                self.pos += 1;
                let inner = self.expr()?;
                self.depth -= 1;
                match self.next() {
                    Some((Token::RParen, _)) => Ok(inner),
                    _ => {
                        self.pos -= 1;
                        Err(self.error_here("')'"))
                    }
                }
            }
            Some((Token::Ident(word), _)) if word == "answered" => {
                self.pos += 1;
                if !matches!(self.next(), Some((Token::LParen, _))) {
                    self.pos -= 1;
                    return Err(self.error_here("'(' after 'answered'"));
                }
                let target = self.question_ref()?;
                if !matches!(self.next(), Some((Token::RParen, _))) {
                    self.pos -= 1;
                    return Err(self.error_here("')'"));
                }
                Ok(Condition::Answered(target))
            }
            Some((Token::Text(option), _)) => {
                self.pos += 1;
                if !self.at_keyword("in") {
                    return Err(self.error_here("'in' after the option code"));
                }
                self.pos += 1;
                let target = self.question_ref()?;
                Ok(Condition::Contains { target, option })
            }
            Some((Token::Ident(_), _)) => {
                let target = self.question_ref()?;
                let op = match self.next() {
                    Some((Token::Op(op), _)) => op,
                    _ => {
                        self.pos -= 1;
                        return Err(self.error_here("a comparison operator (==, !=, <, <=, >, >=)"));
                    }
                };
                let value = match self.next() {
                    Some((Token::Text(t), _)) => Literal::Text(t),
                    Some((Token::Number(n), _)) => Literal::Number(n),
                    Some((Token::Ident(w), _)) if w == "true" => Literal::Bool(true),
                    Some((Token::Ident(w), _)) if w == "false" => Literal::Bool(false),
                    _ => {
                        self.pos -= 1;
                        return Err(self.error_here("a quoted text, a number, true or false"));
                    }
                };
                Ok(Condition::Compare { target, op, value })
            }
            _ => Err(self.error_here("a question id, '(', 'not' or 'answered(...)'")),
        }
    }

    fn question_ref(&mut self) -> Result<QuestionRef, ParseError> {
        let (question, offset) = match self.next() {
            Some((Token::Ident(w), offset))
                if !matches!(w.as_str(), "and" | "or" | "not" | "in" | "true" | "false") =>
            {
                (w, offset)
            }
            _ => {
                self.pos -= 1;
                return Err(self.error_here("a question id"));
            }
        };
        let row = if matches!(self.peek(), Some((Token::Dot, _))) {
            self.pos += 1;
            match self.next() {
                Some((Token::Ident(w), _)) => Some(w),
                _ => {
                    self.pos -= 1;
                    return Err(self.error_here("a matrix row code after '.'"));
                }
            }
        } else {
            None
        };
        Ok(QuestionRef {
            question,
            row,
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);
    impl AnswerLookup for Map {
        fn scalar(&self, q: &str, _row: Option<&str>) -> Option<String> {
            self.0.get(q).map(|s| s.to_string())
        }
        fn selected(&self, q: &str, o: &str) -> bool {
            self.0.get(q).is_some_and(|v| v.split(',').any(|x| x == o))
        }
        fn answered(&self, q: &str) -> bool {
            self.0.contains_key(q)
        }
    }

    #[test]
    fn parses_and_evaluates_precedence() {
        let c = Condition::parse("a == 'yes' or b > 3 and not \"x\" in c").unwrap();
        let answers = Map(HashMap::from([("a", "no"), ("b", "5"), ("c", "y,z")]));
        assert!(c.evaluate(&answers));
        let answers = Map(HashMap::from([("a", "no"), ("b", "5"), ("c", "x")]));
        assert!(!c.evaluate(&answers));
        assert_eq!(c.references().len(), 3);
    }

    #[test]
    fn unanswered_comparisons_are_false() {
        let c = Condition::parse("a != 'yes'").unwrap();
        assert!(!c.evaluate(&Map(HashMap::new())));
        let c = Condition::parse("not answered(a)").unwrap();
        assert!(c.evaluate(&Map(HashMap::new())));
    }

    #[test]
    fn reports_offsets() {
        let e = Condition::parse("a = 'x'").unwrap_err();
        assert_eq!(e.offset, 2);
        let e = Condition::parse("a == ").unwrap_err();
        assert!(e.message.contains("end of the condition"), "{}", e.message);
        let e = Condition::parse("(a == 1").unwrap_err();
        assert_eq!(e.offset, 7);
        let e = Condition::parse("a == 1 b").unwrap_err();
        assert_eq!(e.offset, 7);
    }

    #[test]
    fn condition_parser_deep_nesting_does_not_overflow() {
        // Found by fuzzing (fuzz/corpus/show_if/regression-deep-nesting): every '(' and 'not'
        // recursed, and a few thousand of them overflowed the stack.
        let deep = format!("{}a == 1{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = Condition::parse(&deep).unwrap_err();
        assert!(e.message.contains("nests more than 32"), "{}", e.message);
        assert_eq!(e.offset, MAX_NESTING);
        let e = Condition::parse(&format!("{}a == 1", "not ".repeat(100_000))).unwrap_err();
        assert!(e.message.contains("nests more than 32"), "{}", e.message);
        // As deep as allowed still parses and evaluates.
        let ok = format!(
            "{}not a == 1{}",
            "(".repeat(MAX_NESTING - 1),
            ")".repeat(MAX_NESTING - 1)
        );
        let c = Condition::parse(&ok).unwrap();
        assert!(c.evaluate(&Map(HashMap::from([("a", "2")]))));
    }

    #[test]
    fn condition_with_too_many_tests_is_refused() {
        // A long 'and' chain builds a tree as deep as it is long, which evaluating recurses.
        let chain = |n: usize| vec!["a == 1"; n].join(" and ");
        let c = Condition::parse(&chain(MAX_TESTS)).unwrap();
        assert!(c.evaluate(&Map(HashMap::from([("a", "1")]))));
        let e = Condition::parse(&chain(100_000)).unwrap_err();
        assert!(e.message.contains("more than 256 tests"), "{}", e.message);
        assert_eq!(e.offset, MAX_TESTS * "a == 1 and ".len());
    }

    #[test]
    fn matrix_rows_and_booleans() {
        let c = Condition::parse("m.info_sharing == 'very' and y == true").unwrap();
        assert_eq!(c.references()[0].row.as_deref(), Some("info_sharing"));
        let answers = Map(HashMap::from([("m", "very"), ("y", "yes")]));
        assert!(c.evaluate(&answers));
    }
}
