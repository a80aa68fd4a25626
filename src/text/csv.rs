//! CSV files that spreadsheets open safely.
//!
//! A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
//! LibreOffice and Google Sheets as a formula (CSV injection). Every CSV the program writes goes
//! through [`SafeWriter`], which applies OWASP's rule: such a cell gets a leading `'`, which the
//! spreadsheet shows as text and does not evaluate (also when spaces or line breaks come
//! first). A plain number keeps its sign, so numeric answers such as `-3.5` stay numbers.
//!
//! Every cell is also quoted: a spreadsheet set to French or Spanish conventions splits a file
//! on `;`, so an unquoted `a;=1+1` would become two cells, the second a formula.

use std::borrow::Cow;

/// The characters that make a spreadsheet evaluate a cell.
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as a spreadsheet should see it: a would-be formula is prefixed with `'`.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if starts_formula(cell) && !is_plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The inverse of [`neutralise`] for files coming back in (a contacts export edited and
/// imported again): `'=x` becomes `=x`, anything else is unchanged.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if starts_formula(rest) => rest,
        _ => cell,
    }
}

/// Whether a spreadsheet would read the cell as a formula: a trigger first, or after spaces and
/// line breaks (which some spreadsheets skip).
fn starts_formula(cell: &str) -> bool {
    cell.starts_with(TRIGGERS) || cell.trim_start_matches([' ', '\n']).starts_with(TRIGGERS)
}

/// `-12`, `+3.5`, `-1e-3`: a number a spreadsheet reads as a number, not a formula.
fn is_plain_number(cell: &str) -> bool {
    let body = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(digits)
}

/// A CSV writer whose every cell is neutralised, and quoted where it holds a comma, a
/// semicolon, a quote or a line break (RFC 4180, with `;` added for spreadsheets that split on
/// it).
#[derive(Default)]
pub struct SafeWriter {
    out: String,
}

impl SafeWriter {
    pub fn new() -> SafeWriter {
        SafeWriter::default()
    }

    pub fn write_record<I, T>(&mut self, record: I) -> Result<(), ::csv::Error>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        for (i, cell) in record.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let cell = neutralise(cell.as_ref());
            if cell.contains([',', ';', '"', '\n', '\r']) {
                self.out.push('"');
                self.out.push_str(&cell.replace('"', "\"\""));
                self.out.push('"');
            } else {
                self.out.push_str(&cell);
            }
        }
        self.out.push('\n');
        Ok(())
    }

    /// The file's text.
    pub fn finish(self) -> Result<String, ::csv::Error> {
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in [
            "=HYPERLINK(\"http://x\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1)",
            "\t=1+1",
            "\r=1+1",
            "-",
            " =cmd|' /C calc'!A0",
            "\n=1+1",
        ] {
            assert_eq!(neutralise(bad), format!("'{bad}"), "{bad:?}");
            assert_eq!(restore(&neutralise(bad)), bad);
        }
        for good in ["-3.5", "+4", "-1e-3", "12", "Sweden", "", "a=b", "'quoted"] {
            assert_eq!(neutralise(good), good, "{good:?}");
        }
        assert_eq!(restore("'quoted"), "'quoted");
    }

    #[test]
    fn writer_neutralises_every_cell() {
        let mut w = SafeWriter::new();
        w.write_record(["iso3", "answer"]).unwrap();
        w.write_record(["SWE", "=1+1"]).unwrap();
        w.write_record(["FRA", "a;=1+1"]).unwrap();
        w.write_record(["MAR", "say \"hi\", then\nleave"]).unwrap();
        let text = w.finish().unwrap();
        assert_eq!(
            text,
            "iso3,answer\nSWE,'=1+1\nFRA,\"a;=1+1\"\nMAR,\"say \"\"hi\"\", then\nleave\"\n"
        );
        // What a standard reader makes of it.
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        assert_eq!(rows[2], vec!["MAR", "say \"hi\", then\nleave"]);
    }
}
