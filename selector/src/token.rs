//! The selector tokenizer: turns text into positioned tokens, following Calico's lexical rules.
//!
//! The rules, as Calico applies them:
//! - only space and tab separate tokens; any other character outside a string (a newline, a
//!   carriage return, a non-ASCII letter) is an error;
//! - strings are quoted with `'` or `"` and end at the next identical quote; there are no escapes,
//!   so a string can hold the other quote character but never its own;
//! - a label name is 1 to 512 characters from `a-z A-Z 0-9 _ . / -`;
//! - directly after a label only an operator may follow: `==`, `!=`, or one of the words
//!   `contains`, `starts with`, `ends with`, `not in`, `in`; the two-word operators may be
//!   written with any run of spaces/tabs between the words, or none (`startswith`, `notin`), and
//!   the word must end there (`a inside {}` is an error, `a in{}` is not);
//! - `has(`, `all(` and `global(` are recognised only when written exactly so (no space before
//!   the parenthesis); inside the parentheses spaces are allowed (`has( a )`). Otherwise `all`,
//!   `has`, `global`, `in`, `contains` ... are ordinary label names.

use crate::error::ParseError;

/// Longest label name Calico accepts, in bytes.
pub const MAX_LABEL_LEN: usize = 512;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    Label(&'a str),
    Str(&'a str),
    LBrace,
    RBrace,
    Comma,
    Eq,
    Ne,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Not,
    All,
    Global,
    Has(&'a str),
    LParen,
    RParen,
    And,
    Or,
    Eof,
}

impl Kind<'_> {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Kind::Label(l) => format!("label {l:?}"),
            Kind::Str(s) => format!("string {s:?}"),
            Kind::LBrace => "'{'".into(),
            Kind::RBrace => "'}'".into(),
            Kind::Comma => "','".into(),
            Kind::Eq => "'=='".into(),
            Kind::Ne => "'!='".into(),
            Kind::In => "'in'".into(),
            Kind::NotIn => "'not in'".into(),
            Kind::Contains => "'contains'".into(),
            Kind::StartsWith => "'starts with'".into(),
            Kind::EndsWith => "'ends with'".into(),
            Kind::Not => "'!'".into(),
            Kind::All => "'all()'".into(),
            Kind::Global => "'global()'".into(),
            Kind::Has(l) => format!("'has({l})'"),
            Kind::LParen => "'('".into(),
            Kind::RParen => "')'".into(),
            Kind::And => "'&&'".into(),
            Kind::Or => "'||'".into(),
            Kind::Eof => "the end of the selector".into(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: Kind<'a>,
    pub pos: usize,
}

/// Whether `c` may appear in a label name.
pub(crate) fn is_label_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')
}

/// Whether `label` is a valid label name for a selector: 1 to 512 characters from
/// `a-z A-Z 0-9 _ . / -` (Calico's rule; note that it is looser than Kubernetes' own).
pub fn is_valid_label(label: &str) -> bool {
    label_rule_broken(label).is_none()
}

/// The label-name rule `label` breaks, if any.
pub(crate) fn label_rule_broken(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        Some("a label name must not be empty")
    } else if label.len() > MAX_LABEL_LEN {
        Some("a label name must be at most 512 characters")
    } else if !label.bytes().all(is_label_byte) {
        Some("a label name may contain only a-z, A-Z, 0-9, '_', '.', '/' and '-'")
    } else {
        None
    }
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_blanks(&mut self) {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() && is_blank(bytes[self.at]) {
            self.at += 1;
        }
    }

    /// Whether the text at `at` starts a new word (end of text, or not a label character).
    fn boundary_at(&self, at: usize) -> bool {
        self.text
            .as_bytes()
            .get(at)
            .is_none_or(|c| !is_label_byte(*c))
    }

    /// Consumes `words` separated by optional blanks if they are next and the last one ends at a
    /// word boundary.
    fn eat_words(&mut self, words: &[&str]) -> bool {
        let bytes = self.text.as_bytes();
        let mut at = self.at;
        for (i, word) in words.iter().enumerate() {
            if !self.text[at..].starts_with(word) {
                return false;
            }
            at += word.len();
            if i + 1 < words.len() {
                while at < bytes.len() && is_blank(bytes[at]) {
                    at += 1;
                }
            }
        }
        if !self.boundary_at(at) {
            return false;
        }
        self.at = at;
        true
    }

    /// Consumes a label name, or reports why there is none at this point.
    fn label(&mut self, expected: &str) -> Result<&'a str, ParseError> {
        let start = self.at;
        let len = self
            .rest()
            .bytes()
            .take_while(|c| is_label_byte(*c))
            .count();
        if len == 0 {
            return Err(self.unexpected_char(expected));
        }
        if len > MAX_LABEL_LEN {
            return Err(ParseError::new(
                start,
                format!("label name is {len} characters long; the limit is {MAX_LABEL_LEN}"),
            ));
        }
        self.at += len;
        Ok(&self.text[start..start + len])
    }

    fn unexpected_char(&self, expected: &str) -> ParseError {
        match self.rest().chars().next() {
            Some(c @ ('\n' | '\r')) => ParseError::new(
                self.at,
                format!(
                    "unexpected line break {c:?}: only spaces and tabs may separate tokens \
                     (write the selector on one line)"
                ),
            ),
            Some(c) => ParseError::new(
                self.at,
                format!("unexpected character {c:?}, expected {expected}"),
            ),
            None => ParseError::new(
                self.at,
                format!("unexpected end of selector, expected {expected}"),
            ),
        }
    }

    /// Consumes `)` after optional blanks, closing `opener`.
    fn close_paren(&mut self, opener: &str, opened_at: usize) -> Result<(), ParseError> {
        self.skip_blanks();
        if self.rest().starts_with(')') {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected_char(&format!(
                "')' to close the '{opener}' at position {opened_at}"
            )))
        }
    }

    fn next_token(&mut self, after_label: Option<&str>) -> Result<Kind<'a>, ParseError> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let c = bytes[start];
        let next = bytes.get(start + 1).copied();
        let simple = match c {
            b'(' => Some(Kind::LParen),
            b')' => Some(Kind::RParen),
            b'{' => Some(Kind::LBrace),
            b'}' => Some(Kind::RBrace),
            b',' => Some(Kind::Comma),
            _ => None,
        };
        if let Some(kind) = simple {
            self.at += 1;
            return Ok(kind);
        }
        match (c, next) {
            (b'"' | b'\'', _) => {
                let quote = c as char;
                let body = &self.text[start + 1..];
                let Some(len) = body.find(quote) else {
                    return Err(ParseError::new(
                        start,
                        format!("unterminated string (missing closing {quote})"),
                    ));
                };
                self.at = start + 1 + len + 1;
                return Ok(Kind::Str(&body[..len]));
            }
            (b'=', Some(b'=')) => return self.two(Kind::Eq),
            (b'!', Some(b'=')) => return self.two(Kind::Ne),
            (b'&', Some(b'&')) => return self.two(Kind::And),
            (b'|', Some(b'|')) => return self.two(Kind::Or),
            (b'!', _) => {
                self.at += 1;
                return Ok(Kind::Not);
            }
            (b'=' | b'&' | b'|', _) => {
                let op = if c == b'=' {
                    "=="
                } else if c == b'&' {
                    "&&"
                } else {
                    "||"
                };
                return Err(ParseError::new(
                    start,
                    format!(
                        "expected '{op}': a single '{}' is not an operator",
                        c as char
                    ),
                ));
            }
            _ => {}
        }
        if let Some(label) = after_label {
            return self.operator_word(label);
        }
        if self.rest().starts_with("has(") {
            self.at += "has(".len();
            self.skip_blanks();
            let label = self.label("a label name inside 'has(...)'")?;
            self.close_paren("has(", start)?;
            return Ok(Kind::Has(label));
        }
        for (word, kind) in [("all(", Kind::All), ("global(", Kind::Global)] {
            if self.rest().starts_with(word) {
                self.at += word.len();
                self.close_paren(word, start)?;
                return Ok(kind);
            }
        }
        let label = self.label("a label name, 'has(', 'all()', 'global()', '!' or '('")?;
        Ok(Kind::Label(label))
    }

    fn two(&mut self, kind: Kind<'a>) -> Result<Kind<'a>, ParseError> {
        self.at += 2;
        Ok(kind)
    }

    fn operator_word(&mut self, label: &str) -> Result<Kind<'a>, ParseError> {
        const WORDS: [(&[&str], Kind<'static>); 5] = [
            (&["contains"], Kind::Contains),
            (&["starts", "with"], Kind::StartsWith),
            (&["ends", "with"], Kind::EndsWith),
            (&["not", "in"], Kind::NotIn),
            (&["in"], Kind::In),
        ];
        for (words, kind) in WORDS {
            if self.eat_words(words) {
                return Ok(kind);
            }
        }
        let expected = format!(
            "an operator after label {label:?} (==, !=, in, not in, contains, starts with, ends with)"
        );
        match self.rest().chars().next() {
            Some(c) if c.is_ascii() && is_label_byte(c as u8) => {
                let word: String = self
                    .rest()
                    .chars()
                    .take_while(|c| c.is_ascii() && is_label_byte(*c as u8))
                    .collect();
                Err(ParseError::new(
                    self.at,
                    format!("unknown operator {word:?}, expected {expected}"),
                ))
            }
            _ => Err(self.unexpected_char(&expected)),
        }
    }
}

/// Splits `text` into tokens, ending with `Kind::Eof` at `text.len()`.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut lexer = Lexer { text, at: 0 };
    let mut tokens: Vec<Token<'_>> = Vec::new();
    loop {
        lexer.skip_blanks();
        let pos = lexer.at;
        if pos == text.len() {
            tokens.push(Token {
                kind: Kind::Eof,
                pos,
            });
            return Ok(tokens);
        }
        let after_label = match tokens.last() {
            Some(Token {
                kind: Kind::Label(l),
                ..
            }) => Some(*l),
            _ => None,
        };
        let kind = lexer.next_token(after_label)?;
        tokens.push(Token { kind, pos });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind<'_>> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn operators_glued_to_their_operands_are_split() {
        assert_eq!(
            kinds("a=='b'"),
            [Kind::Label("a"), Kind::Eq, Kind::Str("b"), Kind::Eof]
        );
        assert_eq!(
            kinds("x notin{'1'}"),
            [
                Kind::Label("x"),
                Kind::NotIn,
                Kind::LBrace,
                Kind::Str("1"),
                Kind::RBrace,
                Kind::Eof
            ]
        );
    }

    #[test]
    fn operator_words_are_plain_labels_in_label_position() {
        assert_eq!(
            kinds("in in {}"),
            [
                Kind::Label("in"),
                Kind::In,
                Kind::LBrace,
                Kind::RBrace,
                Kind::Eof
            ]
        );
        assert_eq!(
            kinds("all == ''"),
            [Kind::Label("all"), Kind::Eq, Kind::Str(""), Kind::Eof]
        );
    }

    #[test]
    fn positions_are_byte_offsets_of_token_starts() {
        let tokens = tokenize("  has( k )\t&& x != \"é\"").unwrap();
        let pos: Vec<usize> = tokens.iter().map(|t| t.pos).collect();
        assert_eq!(pos, [2, 11, 14, 16, 19, 23]);
    }

    #[test]
    fn has_without_closing_paren_points_at_what_follows_the_label() {
        let err = tokenize("has(a b)").unwrap_err();
        assert_eq!(err.position, 6);
    }

    #[test]
    fn label_length_limit_is_512() {
        assert!(tokenize(&format!("has({})", "a".repeat(512))).is_ok());
        let err = tokenize(&format!("has({})", "a".repeat(513))).unwrap_err();
        assert_eq!(err.position, 4);
    }

    #[test]
    fn label_validity_follows_the_selector_rule() {
        assert!(is_valid_label("projectcalico.org/namespace"));
        assert!(is_valid_label("-._/9"));
        assert!(!is_valid_label(""));
        assert!(!is_valid_label("a b"));
        assert!(!is_valid_label("ä"));
        assert!(!is_valid_label(&"x".repeat(513)));
    }
}
