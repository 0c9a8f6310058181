//! The Calico label selector language: parser, evaluator and canonical form.
//!
//! Semantics follow Calico's `libcalico-go/lib/selector` exactly:
//! - `k == 'v'`, `k in {..}`, `k contains 's'`, `k starts with 's'`, `k ends with 's'` and
//!   `has(k)` need label `k` to be present; `k != 'v'` and `k not in {..}` also match when `k`
//!   is absent. `k in {}` never matches; `k not in {}` always does.
//! - `all()` matches everything, and so does `global()` when evaluated (its "non-namespaced
//!   only" meaning is applied by callers in a `namespaceSelector`, see
//!   [`Selector::replace_scope_operators`]). Blank text (empty, or spaces and tabs only) is
//!   `all()`.
//! - Precedence: `!` binds tighter than `&&`, which binds tighter than `||`; parentheses group.
//! - Strings use `'` or `"` with no escapes. Only space and tab are whitespace.
//! - Label names are 1 to 512 characters from `a-z A-Z 0-9 _ . / -`.
//! - Set values are sorted and de-duplicated; a trailing comma in a set is accepted.
//!
//! The canonical text is Calico's `String()` form (`(a == "b" && !has(c))`), and
//! [`Selector::unique_id`] is Calico's `UniqueID()`, so IP-set names derived from it agree with
//! Calico's.

mod ast;
mod error;
mod labels;
mod normalize;
mod parser;
mod token;
mod unique_id;

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

pub use ast::Expr;
pub use error::{ExprError, ParseError};
pub use labels::Labels;
pub use parser::MAX_NESTING_DEPTH;
pub use token::{MAX_LABEL_LEN, is_valid_label};

/// A parsed label selector.
///
/// Equality and hashing compare the syntax tree only, so `a=='x'` and `a == "x"` are equal;
/// the text a selector was parsed from is kept for serialisation ([`Selector::text`]).
#[derive(Clone, Debug)]
pub struct Selector {
    expr: Expr,
    /// The text this selector was parsed from, if it was parsed.
    source: Option<Box<str>>,
}

impl Selector {
    /// Parses selector text. Empty or blank text is `all()`.
    pub fn parse(text: &str) -> Result<Selector, ParseError> {
        let expr = parser::parse(text)?;
        Ok(Selector {
            expr,
            source: Some(text.into()),
        })
    }

    /// The selector that matches everything: `all()`.
    pub fn all() -> Selector {
        Selector {
            expr: Expr::All,
            source: None,
        }
    }

    /// Builds a selector from a syntax tree, checking label names and values and bringing the
    /// tree into the parser's normal form (collapsed `!!`, sorted sets, no one-operand groups).
    pub fn from_expr(expr: Expr) -> Result<Selector, ExprError> {
        Ok(Selector {
            expr: normalize::normalize(expr)?,
            source: None,
        })
    }

    /// Whether `labels` satisfy this selector. Does not allocate.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.expr.matches(labels)
    }

    /// Calico's canonical text, e.g. `(app == "web" && tier in {"a", "b"})`. It parses back to an
    /// equal selector.
    pub fn canonical(&self) -> String {
        self.expr.to_string()
    }

    /// The syntax tree (in normal form, see [`Expr`]).
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Takes the syntax tree out of the selector.
    pub fn into_expr(self) -> Expr {
        self.expr
    }

    /// Whether this is exactly `all()` (also true for blank text and `(all())`, not for
    /// `global()`).
    pub fn is_all(&self) -> bool {
        self.expr == Expr::All
    }

    /// Whether `global()` appears anywhere in the selector (Calico allows it only in a rule's
    /// `namespaceSelector`). Looks at the tree, so a string value such as `'global()'` does not
    /// count.
    pub fn uses_global(&self) -> bool {
        let mut stack = vec![&self.expr];
        while let Some(node) = stack.pop() {
            if *node == Expr::Global {
                return true;
            }
            stack.extend(node.children());
        }
        false
    }

    /// The text this selector was parsed from, or its canonical text if it was built otherwise.
    /// This is what serialisation writes, so a resource read and written back keeps the user's
    /// spelling.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.source {
            Some(source) => Cow::Borrowed(source),
            None => Cow::Owned(self.canonical()),
        }
    }

    /// Calico's unique ID for this selector: `s:` and the unpadded base64url SHA-224 of
    /// `s:<canonical text>`. Equal selectors have equal IDs.
    pub fn unique_id(&self) -> String {
        unique_id::unique_id(&self.canonical())
    }

    /// The same selector with `prefix` put before every label name (Calico's `PrefixVisitor`,
    /// used for namespace `pcns.` and service-account `pcsa.` labels). Fails if a prefixed name
    /// breaks the label-name rule.
    pub fn with_label_prefix(&self, prefix: &str) -> Result<Selector, ExprError> {
        let mut expr = self.expr.clone();
        let mut stack = vec![&mut expr];
        while let Some(node) = stack.pop() {
            if let Some(label) = node.label_mut() {
                label.insert_str(0, prefix);
            }
            match node {
                Expr::Not(inner) => stack.push(inner),
                Expr::And(operands) | Expr::Or(operands) => stack.extend(operands.iter_mut()),
                _ => {}
            }
        }
        Selector::from_expr(expr)
    }

    /// The same selector with every `all()` replaced by `all_with` and every `global()` by
    /// `global_with`. In a rule's `namespaceSelector` Calico reads `all()` as
    /// `has(projectcalico.org/namespace)` and `global()` as `!has(projectcalico.org/namespace)`;
    /// this performs that rewrite on the tree (not on the text, so string values are untouched).
    pub fn replace_scope_operators(
        &self,
        all_with: &Expr,
        global_with: &Expr,
    ) -> Result<Selector, ExprError> {
        let mut expr = self.expr.clone();
        let mut stack = vec![&mut expr];
        while let Some(node) = stack.pop() {
            match node {
                Expr::All => *node = all_with.clone(),
                Expr::Global => *node = global_with.clone(),
                Expr::Not(inner) => stack.push(inner),
                Expr::And(operands) | Expr::Or(operands) => stack.extend(operands.iter_mut()),
                _ => {}
            }
        }
        Selector::from_expr(expr)
    }
}

impl Default for Selector {
    fn default() -> Self {
        Selector::all()
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl Eq for Selector {}

impl Hash for Selector {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
    }
}

impl PartialOrd for Selector {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Selector {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.expr.cmp(&other.expr)
    }
}

/// Writes the canonical text.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.expr, f)
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Selector::parse(text)
    }
}

/// Serialises as a string: the parsed text (see [`Selector::text`]).
impl serde::Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

/// Deserialises from a string, rejecting invalid selector syntax with the text and the reason.
impl<'de> serde::Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl serde::de::Visitor<'_> for TextVisitor {
            type Value = Selector;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Calico label selector string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Selector, E> {
                Selector::parse(text)
                    .map_err(|e| E::custom(format_args!("invalid selector {text:?}: {e}")))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}
