//! Delimited text (CSV, TSV) as spreadsheets write it, read with the `csv` crate: quoted fields
//! may hold the separator, doubled quotes and line breaks. Rows may differ in length (callers
//! check what they need); blank lines are passed over.

/// One row: the 1-based line it starts on and its fields, trimmed.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: u64,
    pub fields: Vec<String>,
}

/// Every row of `bytes` separated by `sep` (`b','` or `b'\t'`); the error is the line and the
/// problem (invalid UTF-8, a quote left open).
pub fn read_rows(bytes: &[u8], sep: u8) -> Result<Vec<Row>, (u64, String)> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(sep)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    // Lines counted from byte offsets (the reader's own count is off after blank lines),
    // incrementally: `counted` bytes hold `lines` line breaks.
    let (mut counted, mut lines) = (0usize, 0u64);
    let mut line_at = |byte: u64| {
        let mut at = (byte as usize).min(bytes.len());
        while matches!(bytes.get(at), Some(b'\n' | b'\r')) {
            at += 1;
        }
        let at = at.min(bytes.len()).max(counted);
        lines += bytes[counted..at].iter().filter(|&&b| b == b'\n').count() as u64;
        counted = at;
        lines + 1
    };
    for record in r.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                return Err((line, e.to_string()));
            }
        };
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let fields = record.iter().map(|f| f.trim().to_string()).collect();
        rows.push(Row { line, fields });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_their_separators_and_quotes() {
        let text = "artist,title,duration_s\n\"Crosby, Stills & Nash\",\"Suite: \"\"Judy\"\"\",442\n\n\"Line\nbreak\",x,1\n";
        let rows = read_rows(text.as_bytes(), b',').unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1].fields,
            ["Crosby, Stills & Nash", "Suite: \"Judy\"", "442"]
        );
        assert_eq!((rows[1].line, rows[2].line), (2, 4));
        assert_eq!(rows[2].fields[0], "Line\nbreak");
        let tsv = read_rows(b"a\tb, c\n", b'\t').unwrap();
        assert_eq!(tsv[0].fields, ["a", "b, c"]);
        assert!(read_rows(b"a,\xff\n", b',').is_err());
    }
}
