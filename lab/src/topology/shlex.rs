//! Splitting a command string into words the way containerlab does for `exec`, `cmd` and
//! `entrypoint` (POSIX-like quoting, no shell: no variables, globs or pipes).

/// Splits `s` into words: blanks separate words, `'...'` is literal, `"..."` allows `\`
/// escapes, an unquoted `\` escapes the next character, and `#` at the start of a word begins
/// a comment to the end of the line. The error says what is unterminated.
pub fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '#' if word.is_none() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => w.push(c),
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a backslash at the end with nothing to escape".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn quotes_group_words_and_are_removed() {
        assert_eq!(
            split(r#"ash -c 'echo $FOO' "a \"b\"" c\ d"#).unwrap(),
            vec!["ash", "-c", "echo $FOO", "a \"b\"", "c d"]
        );
    }

    #[test]
    fn empty_quotes_make_an_empty_word() {
        assert_eq!(split("a '' b").unwrap(), vec!["a", "", "b"]);
    }

    #[test]
    fn a_hash_starts_a_comment_only_at_a_word_start() {
        assert_eq!(split("echo a#b # c").unwrap(), vec!["echo", "a#b"]);
    }

    #[test]
    fn an_unterminated_quote_is_an_error() {
        assert!(split("echo 'abc").unwrap_err().contains("single quote"));
        assert!(split("echo \"abc").unwrap_err().contains("double quote"));
    }
}
