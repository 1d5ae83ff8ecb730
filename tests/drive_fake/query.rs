//! The `q` search language of files.list: a tokenizer, a recursive-descent parser and an
//! evaluator.
//!
//! Grammar (what Drive documents in "Search query terms and operators"):
//!
//! ```text
//! or    := and ("or" and)*
//! and   := unary ("and" unary)*
//! unary := "not" unary | "(" or ")" | term
//! term  := STRING "in" (parents | owners | writers | readers)
//!        | FIELD OP VALUE            e.g. name = 'x', trashed=false, modifiedTime > '2026-…'
//!        | FIELD "contains" STRING   name, mimeType, fullText
//!        | (properties | appProperties) "has" "{" key = STRING and value = STRING "}"
//! ```
//!
//! Strings are single-quoted (double quotes also accepted) with `\'` and `\\` escapes; any
//! other escape is an error. Names compare case-insensitively, as on Drive. Anything the
//! parser does not know is an error (the route answers 400 `Invalid Value`), never a term that
//! matches everything.

use super::http::parse_time;
use super::store::{FileSnapshot, ROOT_ID};
use std::time::SystemTime;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Op(&'static str),
    Open,
    Close,
    OpenBrace,
    CloseBrace,
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '{' | '}' => {
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    '{' => Tok::OpenBrace,
                    _ => Tok::CloseBrace,
                });
                i += 1;
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\\') => match chars.get(i + 1) {
                            Some(e @ ('\\' | '\'' | '"')) => {
                                s.push(*e);
                                i += 2;
                            }
                            _ => return Err("bad escape".into()),
                        },
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            '!' | '<' | '>' | '=' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    ('=', _) => ("=", 1),
                    _ => return Err("bad operator".into()),
                };
                out.push(Tok::Op(op));
                i += len;
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i]))
                {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            _ => return Err(format!("unexpected character {c:?}")),
        }
    }
    Ok(out)
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn from_op(op: &str) -> Option<Cmp> {
        Some(match op {
            "=" => Cmp::Eq,
            "!=" => Cmp::Ne,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            _ => return None,
        })
    }

    fn test<T: PartialOrd>(self, a: &T, b: &T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// A leaf of the query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Term {
    InParents(String),
    /// `'me' in owners|writers|readers`; owners only match in My Drive (shared drive files
    /// have no owners on Drive).
    InOwners(String),
    InWriters(String),
    Trashed(Cmp, bool),
    Starred(Cmp, bool),
    SharedWithMe(Cmp, bool),
    /// name = / != (case-insensitive).
    Name(Cmp, String),
    /// name contains: case-insensitive prefix of the name or of a word in it.
    NameContains(String),
    MimeType(Cmp, String),
    MimeTypeContains(String),
    FullText(String),
    ModifiedTime(Cmp, SystemTime),
    CreatedTime(Cmp, SystemTime),
    Property {
        app: bool,
        key: String,
        value: String,
    },
    ShortcutTarget(Cmp, String),
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Term(Term),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, t: Tok) -> Result<(), String> {
        match self.next() {
            Some(ref got) if *got == t => Ok(()),
            got => Err(format!("expected {t:?}, got {got:?}")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            got => Err(format!("expected a string, got {got:?}")),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::Close)?;
            return Ok(e);
        }
        Ok(Expr::Term(self.term()?))
    }

    fn term(&mut self) -> Result<Term, String> {
        match self.next() {
            Some(Tok::Str(value)) => {
                if !self.keyword("in") {
                    return Err("expected 'in'".into());
                }
                self.pos += 1;
                match self.next() {
                    Some(Tok::Word(w)) if w == "parents" => Ok(Term::InParents(value)),
                    Some(Tok::Word(w)) if w == "owners" => Ok(Term::InOwners(value)),
                    Some(Tok::Word(w)) if w == "writers" || w == "readers" => {
                        Ok(Term::InWriters(value))
                    }
                    got => Err(format!("unknown collection {got:?}")),
                }
            }
            Some(Tok::Word(field)) => self.field_term(&field),
            got => Err(format!("unexpected {got:?}")),
        }
    }

    fn field_term(&mut self, field: &str) -> Result<Term, String> {
        if self.keyword("contains") {
            self.pos += 1;
            let s = self.string()?;
            return match field {
                "name" => Ok(Term::NameContains(s)),
                "mimeType" => Ok(Term::MimeTypeContains(s)),
                "fullText" => Ok(Term::FullText(s)),
                _ => Err(format!("{field} does not support contains")),
            };
        }
        if self.keyword("has") {
            let app = match field {
                "properties" => false,
                "appProperties" => true,
                _ => return Err(format!("{field} does not support has")),
            };
            self.pos += 1;
            self.expect(Tok::OpenBrace)?;
            self.expect(Tok::Word("key".into()))?;
            self.expect(Tok::Op("="))?;
            let key = self.string()?;
            if !self.keyword("and") {
                return Err("expected and".into());
            }
            self.pos += 1;
            self.expect(Tok::Word("value".into()))?;
            self.expect(Tok::Op("="))?;
            let value = self.string()?;
            self.expect(Tok::CloseBrace)?;
            return Ok(Term::Property { app, key, value });
        }
        let cmp = match self.next() {
            Some(Tok::Op(op)) => Cmp::from_op(op).ok_or("bad operator")?,
            got => return Err(format!("expected an operator, got {got:?}")),
        };
        let equality = matches!(cmp, Cmp::Eq | Cmp::Ne);
        match field {
            "trashed" | "starred" | "sharedWithMe" if equality => {
                let b = match self.next() {
                    Some(Tok::Word(w)) if w == "true" => true,
                    Some(Tok::Word(w)) if w == "false" => false,
                    got => return Err(format!("expected true or false, got {got:?}")),
                };
                Ok(match field {
                    "trashed" => Term::Trashed(cmp, b),
                    "starred" => Term::Starred(cmp, b),
                    _ => Term::SharedWithMe(cmp, b),
                })
            }
            "name" if equality => Ok(Term::Name(cmp, self.string()?)),
            "mimeType" if equality => Ok(Term::MimeType(cmp, self.string()?)),
            "shortcutDetails.targetId" if equality => Ok(Term::ShortcutTarget(cmp, self.string()?)),
            "modifiedTime" | "createdTime" => {
                let s = self.string()?;
                let t = parse_time(&s).ok_or_else(|| format!("bad time {s}"))?;
                Ok(if field == "modifiedTime" {
                    Term::ModifiedTime(cmp, t)
                } else {
                    Term::CreatedTime(cmp, t)
                })
            }
            _ => Err(format!("unsupported term {field} {cmp:?}")),
        }
    }
}

/// Parses a `q` value.
pub(crate) fn parse(q: &str) -> Result<Expr, String> {
    let toks = tokenize(q)?;
    if toks.is_empty() {
        return Err("empty query".into());
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("trailing input at token {}", p.pos));
    }
    Ok(e)
}

/// `name contains`: a case-insensitive prefix of the name or of a word in it.
fn name_contains(name: &str, needle: &str) -> bool {
    let name = name.to_lowercase();
    let needle = needle.to_lowercase();
    if needle.is_empty() {
        return true;
    }
    name.match_indices(&needle).any(|(i, _)| {
        i == 0
            || !name[..i]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
    })
}

impl Expr {
    /// Whether `f` (with `trashed`/`drive_id` computed) matches.
    pub fn matches(&self, f: &FileSnapshot) -> bool {
        match self {
            Expr::And(a, b) => a.matches(f) && b.matches(f),
            Expr::Or(a, b) => a.matches(f) || b.matches(f),
            Expr::Not(a) => !a.matches(f),
            Expr::Term(t) => term_matches(t, f),
        }
    }

    /// A parent every match must have (from a top-level `'X' in parents` conjunct), so the
    /// listing can walk that folder's children instead of every file.
    pub fn parent_hint(&self) -> Option<String> {
        match self {
            Expr::Term(Term::InParents(p)) => Some(resolve(p).to_string()),
            Expr::And(a, b) => a.parent_hint().or_else(|| b.parent_hint()),
            _ => None,
        }
    }
}

fn resolve(id: &str) -> &str {
    if id == "root" {
        ROOT_ID
    } else {
        id
    }
}

fn is_me(who: &str) -> bool {
    who == "me" || who.eq_ignore_ascii_case(super::about::USER_EMAIL)
}

fn term_matches(t: &Term, f: &FileSnapshot) -> bool {
    match t {
        Term::InParents(p) => f.parents.iter().any(|x| x == resolve(p)),
        Term::InOwners(who) => f.drive_id.is_none() && is_me(who),
        Term::InWriters(who) => is_me(who),
        Term::Trashed(c, b) => c.test(&f.trashed, b),
        Term::Starred(c, b) => c.test(&false, b),
        Term::SharedWithMe(c, b) => c.test(&false, b),
        Term::Name(c, s) => c.test(&f.name.to_lowercase(), &s.to_lowercase()),
        Term::NameContains(s) => name_contains(&f.name, s),
        Term::MimeType(c, s) => c.test(&f.mime_type, s),
        Term::MimeTypeContains(s) => f.mime_type.contains(s.as_str()),
        Term::FullText(s) => {
            let s = s.to_lowercase();
            f.name.to_lowercase().contains(&s)
                || f.description
                    .as_deref()
                    .is_some_and(|d| d.to_lowercase().contains(&s))
                || String::from_utf8_lossy(&f.content)
                    .to_lowercase()
                    .contains(&s)
        }
        Term::ModifiedTime(c, t) => c.test(&f.modified_time, t),
        Term::CreatedTime(c, t) => c.test(&f.created_time, t),
        Term::Property { app, key, value } => {
            let map = if *app {
                &f.app_properties
            } else {
                &f.properties
            };
            map.get(key) == Some(value)
        }
        Term::ShortcutTarget(c, id) => {
            let target = f.shortcut_details.as_ref().map(|s| s.target_id.clone());
            c.test(&target, &Some(id.clone()))
        }
    }
}
