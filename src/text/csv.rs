//! CSV files that spreadsheets open safely.
//!
//! A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
//! LibreOffice and Google Sheets as a formula (CSV injection). Every CSV the program writes goes
//! through [`SafeWriter`], which applies OWASP's rule: such a cell gets a leading `'`, which the
//! spreadsheet shows as text and does not evaluate. A plain number keeps its sign, so numeric
//! answers such as `-3.5` stay numbers.

use std::borrow::Cow;

/// The characters that make a spreadsheet evaluate a cell.
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as a spreadsheet should see it: a would-be formula is prefixed with `'`.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some(c) if TRIGGERS.contains(&c) && !is_plain_number(cell) => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

/// The inverse of [`neutralise`] for files coming back in (a contacts export edited and
/// imported again): `'=x` becomes `=x`, anything else is unchanged.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(TRIGGERS) => rest,
        _ => cell,
    }
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

/// A CSV writer whose every cell is neutralised.
pub struct SafeWriter {
    inner: ::csv::Writer<Vec<u8>>,
}

impl Default for SafeWriter {
    fn default() -> Self {
        SafeWriter::new()
    }
}

impl SafeWriter {
    pub fn new() -> SafeWriter {
        SafeWriter {
            inner: ::csv::Writer::from_writer(Vec::new()),
        }
    }

    pub fn write_record<I, T>(&mut self, record: I) -> Result<(), ::csv::Error>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let cells: Vec<String> = record
            .into_iter()
            .map(|c| neutralise(c.as_ref()).into_owned())
            .collect();
        self.inner.write_record(&cells)
    }

    /// The file's text.
    pub fn finish(self) -> Result<String, ::csv::Error> {
        let bytes = self.inner.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
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
        assert_eq!(w.finish().unwrap(), "iso3,answer\nSWE,'=1+1\n");
    }
}
