//! Markdown whose user-written parts stay text.
//!
//! An answer may contain anything: a line that starts with `###` would become a heading (a fake
//! practice under another country's name), `<script>` or `[x](javascript:...)` would become HTML
//! or a link where the file is rendered. Every character that can start or close a Markdown
//! construct is escaped with a backslash (CommonMark allows it before any ASCII punctuation),
//! and `<` and `>` become entities, so not even a raw-text viewer finds a tag.

/// Characters that open or close Markdown constructs (emphasis, links, headings, lists, code,
/// tables, setext underlines, strikethrough).
/// `:` and `@` too: GFM turns `http://...`, `www.` hosts and email addresses into links.
const SIGNIFICANT: &str = "\\`*_[](){}#+-.!|~=&:@";

/// One line of user text as literal Markdown inline text (line breaks become spaces).
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    push_inline(&mut out, text);
    out
}

/// [`inline`], appended to `out` (a document of many answers is written without a string per
/// piece).
pub fn push_inline(out: &mut String, text: &str) {
    out.reserve(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if SIGNIFICANT.contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// A block of user text: its paragraphs kept (blank lines), its line breaks kept as hard
/// breaks, every line escaped and unindented (four spaces would start a code block).
pub fn block(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    push_block(&mut out, text);
    out
}

/// [`block`], appended to `out`.
pub fn push_block(out: &mut String, text: &str) {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut paragraph_written = false;
    for para in normalised.split("\n\n") {
        let mut line_written = false;
        for line in para.lines() {
            let start = out.len();
            let separator = if line_written {
                "\\\n"
            } else if paragraph_written {
                "\n\n"
            } else {
                ""
            };
            out.push_str(separator);
            let escaped = out.len();
            push_inline(out, line.trim());
            if out.len() == escaped {
                // Nothing left of the line once escaped: no line of its own.
                out.truncate(start);
            } else {
                line_written = true;
            }
        }
        paragraph_written |= line_written;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_make_headings_html_or_links() {
        let text = "Good practice.\n### Sweden (Northern Europe)\n    code\n<script>alert(1)</script> [x](javascript:alert(1)) <javascript:alert(1)>";
        let md = block(text);
        assert!(
            md.lines()
                .all(|l| !l.starts_with('#') && !l.starts_with(' ')),
            "{md}"
        );
        assert!(!md.contains("<script"), "{md}");
        assert!(!md.contains("](javascript"), "{md}");
        assert!(!md.contains("<javascript"), "{md}");
        assert!(md.contains("\\#\\#\\# Sweden"), "{md}");
        let autolinks = inline("see http://3627732462/x, https://evil/p and evil@evil.example");
        assert!(
            !autolinks.contains("http://")
                && !autolinks.contains("https://")
                && !autolinks.contains("l@e"),
            "{autolinks}"
        );
        assert_eq!(inline("a\nb *c*"), "a b \\*c\\*");
        assert_eq!(inline("x < y & \\"), "x &lt; y \\& \\\\");
    }

    #[test]
    fn paragraphs_and_line_breaks_are_kept() {
        assert_eq!(block("one\ntwo\n\nthree"), "one\\\ntwo\n\nthree");
        // Empty paragraphs and lines with nothing left once escaped leave no separator.
        assert_eq!(block("\n\none\n\n\n\ntwo"), "one\n\ntwo");
        assert_eq!(block("a\n\u{7}\nb"), "a\\\nb");
        assert_eq!(block("  x  \r\n  y\r"), "x\\\ny");
        assert_eq!(block("\u{7}\n\nz\n\n\u{7}"), "z");
        assert_eq!(block("\n \n"), "");
    }

    #[test]
    fn appending_writes_what_the_standalone_forms_return() {
        for text in ["", "a *b*\n\nc\nd", "\u{7}\n\nz", "x < y"] {
            let mut out = String::from("# head\n");
            push_inline(&mut out, text);
            assert_eq!(out, format!("# head\n{}", inline(text)));
            let mut out = String::from("# head\n");
            push_block(&mut out, text);
            assert_eq!(out, format!("# head\n{}", block(text)));
        }
    }
}
