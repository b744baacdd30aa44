//! `split_statements` on any text: it never panics; every statement is a
//! trimmed piece of the script, not empty and not only comments, starting
//! on the line it names; splitting a statement again gives that statement
//! alone.

#![no_main]

use dbfault::split_statements;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(script) = std::str::from_utf8(data) else {
        return;
    };
    let lines = script.matches('\n').count() + 1;
    let mut end_of_last = 0;
    for stmt in split_statements(script) {
        assert!(!stmt.sql.is_empty(), "an empty statement in {script:?}");
        assert_eq!(stmt.sql, stmt.sql.trim(), "untrimmed");
        assert!(!comments_only(stmt.sql), "a comment-only statement: {stmt:?}");
        // The statement borrows its piece of the script, after the one
        // before it, and starts on the line it names.
        let at = (stmt.sql.as_ptr() as usize)
            .checked_sub(script.as_ptr() as usize)
            .filter(|at| at + stmt.sql.len() <= script.len())
            .unwrap_or_else(|| panic!("{stmt:?} is not a piece of {script:?}"));
        assert!(at >= end_of_last, "{stmt:?} overlaps the statement before it");
        assert!((1..=lines).contains(&stmt.line), "{stmt:?}");
        assert_eq!(script[..at].matches('\n').count() + 1, stmt.line, "{stmt:?} in {script:?}");
        end_of_last = at + stmt.sql.len();
        let again = split_statements(stmt.sql);
        assert_eq!(again.len(), 1, "{stmt:?} splits into {again:?}");
        assert_eq!(again[0].sql, stmt.sql);
    }
});

/// Whether `sql` holds nothing but whitespace, `-- …` line comments and
/// `/* … */` block comments (an unterminated one runs to the end): an
/// oracle written apart from the splitter's own check.
fn comments_only(sql: &str) -> bool {
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '-' if chars.peek() == Some(&'-') => {
                while chars.next_if(|&c| c != '\n').is_some() {}
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                for c in chars.by_ref() {
                    if star && c == '/' {
                        break;
                    }
                    star = c == '*';
                }
            }
            _ => return false,
        }
    }
    true
}
