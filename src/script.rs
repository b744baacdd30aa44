//! Running SQL scripts (schemas, seed data) statement by statement.

use crate::{Connection, Result};

/// One statement of a script and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's text, trimmed, without its `;`.
    pub sql: &'a str,
    /// The 1-based line of the script it starts on.
    pub line: usize,
}

/// Splits a script into statements at each `;` that is not inside a
/// string, a quoted identifier or a comment. Pieces holding nothing but
/// whitespace and comments (`-- …` to the end of the line, `/* … */`, an
/// unterminated `/*` to the end of the script) are dropped: drivers refuse
/// or mis-run them. Comments within a statement are kept.
pub fn split_statements<'a>(script: &'a str) -> Vec<Statement<'a>> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // The newlines before `counted`, so each statement's line number is
    // found by counting only from the previous statement on: the split is
    // linear in the script's length.
    let (mut counted, mut newlines) = (0, 0);
    let mut push = |out: &mut Vec<Statement<'a>>, from: usize, to: usize| {
        let piece = &script[from..to];
        if is_blank(piece) {
            return;
        }
        let lead = piece.len() - piece.trim_start().len();
        newlines += bytecount_newlines(&bytes[counted..from + lead]);
        counted = from + lead;
        out.push(Statement {
            sql: piece.trim(),
            line: newlines + 1,
        });
    };
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        // A doubled quote is an escaped quote.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                push(&mut out, start, i);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < script.len() {
        push(&mut out, start, script.len());
    }
    out
}

/// How many `\n` bytes `bytes` holds.
fn bytecount_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Whether `piece` holds only whitespace and comments.
fn is_blank(piece: &str) -> bool {
    let mut rest = piece.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            return rest.is_empty();
        }
        rest = rest.trim_start();
    }
}

/// Runs every statement of `script` on `conn`, in order, with
/// [`Connection::execute`]; returns how many ran.
///
/// # Errors
///
/// The first statement the driver rejects stops the script; its error is
/// returned with the statement's number and line added to the message
/// (kind, class, code and source are kept). Statements before it stay
/// applied unless the caller wrapped the script in a transaction.
pub fn run_script<C: Connection + ?Sized>(conn: &mut C, script: &str) -> Result<usize> {
    let statements = split_statements(script);
    for (n, stmt) in statements.iter().enumerate() {
        conn.execute(stmt.sql, &[])
            .map_err(|e| e.context(format!("statement {} (line {})", n + 1, stmt.line)))?;
    }
    Ok(statements.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_stay_right_over_a_long_script() {
        // Statements on every third line, with comment-only pieces (which
        // are dropped) and blank lines between them.
        let script: String = (0..5_000)
            .map(|n| format!("INSERT INTO t VALUES ({n});\n/* note {n} */;\n\n"))
            .collect();
        let statements = split_statements(&script);
        assert_eq!(statements.len(), 5_000);
        for (n, statement) in statements.iter().enumerate() {
            assert_eq!(statement.line, 3 * n + 1, "{}", statement.sql);
            assert_eq!(
                statement.sql,
                format!("INSERT INTO t VALUES ({n});").trim_end_matches(';')
            );
        }
    }

    #[test]
    fn splits_at_semicolons_outside_strings_and_comments() {
        let script = "-- head; comment\nCREATE TABLE t (a TEXT);\n\nINSERT INTO t VALUES ('x;y'); /* c; */ INSERT INTO t VALUES ('it''s');\n-- tail\n";
        let stmts = split_statements(script);
        assert_eq!(
            stmts.iter().map(|s| (s.sql, s.line)).collect::<Vec<_>>(),
            [
                ("-- head; comment\nCREATE TABLE t (a TEXT)", 1),
                ("INSERT INTO t VALUES ('x;y')", 4),
                ("/* c; */ INSERT INTO t VALUES ('it''s')", 4),
            ]
        );
    }

    #[test]
    fn comment_only_pieces_are_dropped() {
        let cases: [(&str, &[&str]); 12] = [
            ("'';/**/", &["''"]),
            ("/**/", &[]),
            ("/* a; b */;;", &[]),
            ("SELECT 1; /* done */", &["SELECT 1"]),
            ("SELECT 1;\n-- one\n/* two */ -- three\n", &["SELECT 1"]),
            ("SELECT 1; /* unterminated", &["SELECT 1"]),
            ("SELECT 1; -- no newline", &["SELECT 1"]),
            ("/* a */ /* b */ ; SELECT 2", &["SELECT 2"]),
            (
                "/* lead */ SELECT 3 /* trail */;",
                &["/* lead */ SELECT 3 /* trail */"],
            ),
            ("SELECT '/*'; SELECT 4", &["SELECT '/*'", "SELECT 4"]),
            ("SELECT '--'; -- c", &["SELECT '--'"]),
            (" \t\n ; \n", &[]),
        ];
        for (script, expected) in cases {
            let got: Vec<&str> = split_statements(script).iter().map(|s| s.sql).collect();
            assert_eq!(got, expected, "script {script:?}");
        }
    }

    #[test]
    fn blank_means_whitespace_and_comments_only() {
        for blank in ["", " \n", "/**/", "-- x", "/* x */ -- y\n /* z", "/*/ */"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for not_blank in ["x", "/**/x", "-- x\ny", "/* x */ y", "- -", "/ *"] {
            assert!(!is_blank(not_blank), "{not_blank:?}");
        }
    }

    #[test]
    fn fixture_schema_splits_into_its_tables() {
        let schema = include_str!("../fixtures/schema.sql");
        let stmts = split_statements(schema);
        assert_eq!(stmts.len(), 3);
        assert!(stmts.iter().all(|s| s.sql.contains("CREATE TABLE")));
    }
}
