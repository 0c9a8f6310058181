//! The selector parser: tokens to `Expr`, with Calico's precedence and a nesting limit.
//!
//! Grammar (lowest precedence first):
//! ```text
//! selector := <blank> | or
//! or       := and ( "||" and )*
//! and      := unary ( "&&" unary )*
//! unary    := "!"* ( "(" or ")" | "all()" | "global()" | "has(" LABEL ")" | LABEL comparison )
//! comparison := ("==" | "!=" | "contains" | "starts with" | "ends with") STRING
//!             | ("in" | "not in") "{" [ STRING ( "," STRING )* [","] ] "}"
//! ```
//! A run of `!` collapses to one or none. A trailing comma in a set is accepted, as Calico does.

use crate::ast::Expr;
use crate::error::ParseError;
use crate::token::{Kind, Token, tokenize};

/// How deeply `(...)` and `&&`/`||` groups may nest. Calico has no limit; this one protects the
/// stack against hostile input and is far beyond any hand-written selector.
pub const MAX_NESTING_DEPTH: usize = 256;

const OPERAND: &str = "a label name, 'has(', 'all()', 'global()', '!' or '('";

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    next: usize,
    open_parens: usize,
}

/// Parses selector text into an expression; blank text is `all()`.
pub(crate) fn parse(text: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        next: 0,
        open_parens: 0,
    };
    if parser.peek().kind == Kind::Eof {
        return Ok(Expr::All);
    }
    let (expr, _) = parser.or()?;
    let rest = parser.peek();
    match rest.kind {
        Kind::Eof => Ok(expr),
        Kind::RParen => Err(ParseError::new(rest.pos, "unmatched ')'")),
        other => Err(ParseError::new(
            rest.pos,
            format!(
                "unexpected {} after a complete expression, expected '&&', '||' or the end of \
                 the selector",
                other.describe()
            ),
        )),
    }
}

/// Rejects a tree whose canonical text would nest parentheses beyond the limit (the canonical
/// form parenthesises every `&&`/`||` group, so it can nest deeper than the input did).
fn check_nesting(nesting: usize, pos: usize) -> Result<usize, ParseError> {
    if nesting > MAX_NESTING_DEPTH {
        return Err(ParseError::new(
            pos,
            format!(
                "'&&'/'||' groups nest more than {MAX_NESTING_DEPTH} levels deep (the canonical \
                 form parenthesises every group)"
            ),
        ));
    }
    Ok(nesting)
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Token<'a> {
        self.tokens[self.next]
    }

    fn bump(&mut self) -> Token<'a> {
        let token = self.tokens[self.next];
        if token.kind != Kind::Eof {
            self.next += 1;
        }
        token
    }

    /// `and ( "||" and )*`; returns the expression and its `&&`/`||` group nesting.
    fn or(&mut self) -> Result<(Expr, usize), ParseError> {
        self.group(Kind::Or, Self::and, Expr::Or)
    }

    /// `unary ( "&&" unary )*`.
    fn and(&mut self) -> Result<(Expr, usize), ParseError> {
        self.group(Kind::And, Self::unary, Expr::And)
    }

    fn group(
        &mut self,
        op: Kind<'static>,
        operand: fn(&mut Self) -> Result<(Expr, usize), ParseError>,
        build: fn(Vec<Expr>) -> Expr,
    ) -> Result<(Expr, usize), ParseError> {
        let (first, mut nesting) = operand(self)?;
        let op_pos = self.peek().pos;
        if self.peek().kind != op {
            return Ok((first, nesting));
        }
        let mut operands = vec![first];
        while self.peek().kind == op {
            self.bump();
            let (next, inner) = operand(self)?;
            nesting = nesting.max(inner);
            operands.push(next);
        }
        let nesting = check_nesting(nesting + 1, op_pos)?;
        Ok((build(operands), nesting))
    }

    /// `"!"* operand`.
    fn unary(&mut self) -> Result<(Expr, usize), ParseError> {
        let mut negated = false;
        while self.peek().kind == Kind::Not {
            self.bump();
            negated = !negated;
        }
        let token = self.bump();
        let (expr, nesting) = match token.kind {
            Kind::All => (Expr::All, 0),
            Kind::Global => (Expr::Global, 0),
            Kind::Has(label) => (Expr::Has(label.to_string()), 0),
            Kind::Label(label) => (self.comparison(label)?, 0),
            Kind::LParen => self.parenthesised(token.pos)?,
            Kind::Eof => {
                return Err(ParseError::new(
                    token.pos,
                    format!("unexpected end of selector, expected {OPERAND}"),
                ));
            }
            other => {
                return Err(ParseError::new(
                    token.pos,
                    format!("expected {OPERAND}, found {}", other.describe()),
                ));
            }
        };
        if !negated {
            return Ok((expr, nesting));
        }
        // `!(!x)`: the canonical form keeps these parentheses, so they count towards the limit.
        let nesting = if matches!(expr, Expr::Not(_)) {
            check_nesting(nesting + 1, token.pos)?
        } else {
            nesting
        };
        Ok((Expr::Not(Box::new(expr)), nesting))
    }

    fn parenthesised(&mut self, open_pos: usize) -> Result<(Expr, usize), ParseError> {
        if self.open_parens == MAX_NESTING_DEPTH {
            return Err(ParseError::new(
                open_pos,
                format!("parentheses nest more than {MAX_NESTING_DEPTH} levels deep"),
            ));
        }
        self.open_parens += 1;
        let inner = self.or()?;
        let close = self.bump();
        if close.kind != Kind::RParen {
            return Err(ParseError::new(
                close.pos,
                format!(
                    "expected ')' to close the '(' at position {open_pos}, found {}",
                    close.kind.describe()
                ),
            ));
        }
        self.open_parens -= 1;
        Ok(inner)
    }

    /// The operator and operand after a label.
    fn comparison(&mut self, label: &str) -> Result<Expr, ParseError> {
        let op = self.bump();
        let label = label.to_string();
        match op.kind {
            Kind::Eq | Kind::Ne | Kind::Contains | Kind::StartsWith | Kind::EndsWith => {
                let operand = self.bump();
                let Kind::Str(value) = operand.kind else {
                    return Err(ParseError::new(
                        operand.pos,
                        format!(
                            "expected a quoted string after {}, found {}",
                            op.kind.describe(),
                            operand.kind.describe()
                        ),
                    ));
                };
                let value = value.to_string();
                Ok(match op.kind {
                    Kind::Eq => Expr::Eq { label, value },
                    Kind::Ne => Expr::Ne { label, value },
                    Kind::Contains => Expr::Contains { label, value },
                    Kind::StartsWith => Expr::StartsWith { label, value },
                    _ => Expr::EndsWith { label, value },
                })
            }
            Kind::In | Kind::NotIn => {
                let values = self.set(op.kind)?;
                Ok(if op.kind == Kind::In {
                    Expr::In { label, values }
                } else {
                    Expr::NotIn { label, values }
                })
            }
            other => Err(ParseError::new(
                op.pos,
                format!(
                    "expected an operator after label {label:?} (==, !=, in, not in, contains, \
                     starts with, ends with), found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// `"{" [ STRING ( "," STRING )* [","] ] "}"`, returned sorted and de-duplicated.
    fn set(&mut self, op: Kind<'a>) -> Result<Vec<String>, ParseError> {
        let open = self.bump();
        if open.kind != Kind::LBrace {
            return Err(ParseError::new(
                open.pos,
                format!(
                    "expected '{{' to start the set of values after {}, found {}",
                    op.describe(),
                    open.kind.describe()
                ),
            ));
        }
        let mut values = Vec::new();
        let mut after_value = false;
        while let Kind::Str(value) = self.peek().kind {
            self.bump();
            values.push(value.to_string());
            after_value = true;
            if self.peek().kind != Kind::Comma {
                break;
            }
            self.bump();
            after_value = false;
        }
        let close = self.bump();
        if close.kind != Kind::RBrace {
            let expected = if after_value {
                "',' or '}'"
            } else {
                "a quoted string or '}'"
            };
            return Err(ParseError::new(
                close.pos,
                format!(
                    "expected {expected} in the set of values opened at position {}, found {}",
                    open.pos,
                    close.kind.describe()
                ),
            ));
        }
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}
