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
///
/// Byte by byte, copying each run of plain text whole: every character it changes is ASCII or
/// a C1 control (`0xC2 0x80..=0x9F` in UTF-8), so a run never ends inside a character. (Char
/// by char, with a search of the significant characters per character, this was most of the
/// time it took to write the Markdown download at 100,000 organisations.)
pub fn push_inline(out: &mut String, text: &str) {
    out.reserve(text.len());
    let bytes = text.as_bytes();
    let mut plain_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let class = BYTE_CLASS[usize::from(byte)];
        let width = match class {
            Class::Plain => 0,
            Class::C1Lead if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => 2,
            Class::C1Lead => 0,
            _ => 1,
        };
        if width == 0 {
            i += 1;
            continue;
        }
        out.push_str(&text[plain_from..i]);
        match class {
            Class::Space => out.push(' '),
            Class::Lt => out.push_str("&lt;"),
            Class::Gt => out.push_str("&gt;"),
            Class::Significant => {
                out.push('\\');
                out.push(char::from(byte));
            }
            Class::Plain | Class::Control | Class::C1Lead => {}
        }
        i += width;
        plain_from = i;
    }
    out.push_str(&text[plain_from..]);
}

/// What [`push_inline`] does with a byte of UTF-8.
#[derive(Clone, Copy)]
enum Class {
    /// Copied as it is.
    Plain,
    /// A line break or tab: a space.
    Space,
    Lt,
    Gt,
    /// One of [`SIGNIFICANT`]: escaped with a backslash.
    Significant,
    /// An ASCII control character (`char::is_control`): dropped.
    Control,
    /// `0xC2`, which starts the C1 controls (U+0080..=U+009F, dropped too) and other
    /// characters (kept).
    C1Lead,
}

const BYTE_CLASS: [Class; 256] = {
    let mut class = [Class::Plain; 256];
    let mut b = 0;
    while b < 0x20 {
        class[b] = Class::Control;
        b += 1;
    }
    class[0x7f] = Class::Control;
    class[b'\n' as usize] = Class::Space;
    class[b'\r' as usize] = Class::Space;
    class[b'\t' as usize] = Class::Space;
    class[b'<' as usize] = Class::Lt;
    class[b'>' as usize] = Class::Gt;
    class[0xc2] = Class::C1Lead;
    let significant = SIGNIFICANT.as_bytes();
    let mut i = 0;
    while i < significant.len() {
        class[significant[i] as usize] = Class::Significant;
        i += 1;
    }
    class
};

/// A block of user text: its paragraphs kept (blank lines), its line breaks kept as hard
/// breaks, every line escaped and unindented (four spaces would start a code block).
pub fn block(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    push_block(&mut out, text);
    out
}

/// [`block`], appended to `out`.
pub fn push_block(out: &mut String, text: &str) {
    let normalised = if text.contains('\r') {
        std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
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

    /// What `push_inline` did char by char before it worked on bytes: the specification the
    /// byte-wise version is checked against.
    fn inline_by_char(text: &str) -> String {
        let mut out = String::new();
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
        out
    }

    #[test]
    fn bytewise_escaping_matches_the_char_by_char_rules() {
        // Every character up to U+0800 (all one- and two-byte UTF-8, the C1 controls and the
        // other 0xC2-led characters among them), alone, between plain text and in pairs.
        let chars: Vec<char> = (0u32..0x800).filter_map(char::from_u32).collect();
        for &c in &chars {
            for text in [
                c.to_string(),
                format!("a{c}b"),
                format!("{c}{c}\u{85}\u{a0}é"),
            ] {
                assert_eq!(inline(&text), inline_by_char(&text), "{text:?}");
            }
        }
        let all: String = chars.iter().collect();
        assert_eq!(inline(&all), inline_by_char(&all));
        for text in [
            "Ünïcödé — 日本語 😀 *x*",
            "\u{9f}\u{a0}\u{c2}",
            "tail<",
            "\u{85}",
        ] {
            assert_eq!(inline(text), inline_by_char(text), "{text:?}");
        }
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
