// SPDX-License-Identifier: Apache-2.0 OR MIT

//! The tokenizer of the channel-program text format (see `docs/program-format.md`).
//!
//! Hand written (a dozen token kinds do not justify a generator), it works on `char`s, tracks
//! 1-based line and column for every token, and never panics: anything it does not understand
//! becomes a [`ProgramError`] pointing at the offending character.

use std::iter::Peekable;
use std::str::CharIndices;

use crate::program_error::{Pos, ProgramError, Reason};

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// What it is.
    pub(crate) kind: Tok,
    /// Where it starts.
    pub(crate) pos: Pos,
}

/// Token kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A name: letters, digits, `-`, `_`, `.`, starting with a letter or `_`.
    Ident(String),
    /// An integer literal (decimal, `0x` hex, `0b` binary, `0o` octal; `_` separators allowed).
    Int(u64),
    /// A quoted string, escapes resolved (bytes, since `\xNN` may produce any byte).
    Str(Vec<u8>),
    /// `x"..."`: hexadecimal bytes, whitespace inside ignored.
    Hex(Vec<u8>),
    /// `:`
    Colon,
    /// `=`
    Equals,
    /// `,`
    Comma,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// End of a line (comments are dropped).
    Newline,
}

impl Tok {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Int(v) => format!("number {v}"),
            Tok::Str(_) => "a string".into(),
            Tok::Hex(_) => "a hex string".into(),
            Tok::Colon => "`:`".into(),
            Tok::Equals => "`=`".into(),
            Tok::Comma => "`,`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Newline => "end of line".into(),
        }
    }
}

/// Splits `src` into tokens.
pub(crate) struct Lexer<'a> {
    chars: Peekable<CharIndices<'a>>,
    line: u32,
    col: u32,
}

impl<'a> Lexer<'a> {
    /// A lexer over `src`.
    pub(crate) fn new(src: &'a str) -> Self {
        Self {
            chars: src.char_indices().peekable(),
            line: 1,
            col: 1,
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.col,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn bump(&mut self) -> Option<char> {
        let (_, c) = self.chars.next()?;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    /// Tokenizes everything; the result always ends with a [`Tok::Newline`].
    pub(crate) fn tokenize(mut self) -> Result<Vec<Token>, ProgramError> {
        let mut out = Vec::new();
        while let Some(tok) = self.next_token()? {
            out.push(tok);
        }
        if !matches!(
            out.last(),
            Some(Token {
                kind: Tok::Newline,
                ..
            })
        ) {
            out.push(Token {
                kind: Tok::Newline,
                pos: self.pos(),
            });
        }
        Ok(out)
    }

    fn next_token(&mut self) -> Result<Option<Token>, ProgramError> {
        loop {
            match self.peek() {
                None => return Ok(None),
                Some('#' | ';') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some(c) if c != '\n' && c.is_whitespace() => {
                    self.bump();
                }
                Some(_) => break,
            }
        }
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        let simple = |kind| Ok(Some(Token { kind, pos }));
        match c {
            '\n' => {
                self.bump();
                simple(Tok::Newline)
            }
            ':' => {
                self.bump();
                simple(Tok::Colon)
            }
            '=' => {
                self.bump();
                simple(Tok::Equals)
            }
            ',' => {
                self.bump();
                simple(Tok::Comma)
            }
            '(' => {
                self.bump();
                simple(Tok::LParen)
            }
            ')' => {
                self.bump();
                simple(Tok::RParen)
            }
            '"' | '\'' => {
                self.bump();
                let bytes = self.string(c, pos)?;
                simple(Tok::Str(bytes))
            }
            '0'..='9' => {
                let v = self.number(pos)?;
                simple(Tok::Int(v))
            }
            c if c.is_alphabetic() || c == '_' => {
                let word = self.word();
                if (word == "x" || word == "X") && matches!(self.peek(), Some('"' | '\'')) {
                    let q = self.bump().unwrap_or('"');
                    let bytes = self.hex_string(q, pos)?;
                    return simple(Tok::Hex(bytes));
                }
                simple(Tok::Ident(word))
            }
            other => Err(ProgramError::at(pos, Reason::UnexpectedChar(other))),
        }
    }

    fn word(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    fn number(&mut self, pos: Pos) -> Result<u64, ProgramError> {
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                text.push(c);
                self.bump();
            } else {
                break;
            }
        }
        parse_int(&text).ok_or(ProgramError::at(pos, Reason::BadNumber(text)))
    }

    fn string(&mut self, quote: char, start: Pos) -> Result<Vec<u8>, ProgramError> {
        let mut out = Vec::new();
        loop {
            let pos = self.pos();
            match self.bump() {
                None | Some('\n') => {
                    return Err(ProgramError::at(start, Reason::UnterminatedString));
                }
                Some(c) if c == quote => return Ok(out),
                Some('\\') => {
                    let esc = self.bump();
                    match esc {
                        Some('n') => out.push(b'\n'),
                        Some('r') => out.push(b'\r'),
                        Some('t') => out.push(b'\t'),
                        Some('0') => out.push(0),
                        Some('\\') => out.push(b'\\'),
                        Some('"') => out.push(b'"'),
                        Some('\'') => out.push(b'\''),
                        Some('x') => {
                            let hi = self.bump().and_then(|c| c.to_digit(16));
                            let lo = self.bump().and_then(|c| c.to_digit(16));
                            match (hi, lo) {
                                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                                _ => return Err(ProgramError::at(pos, Reason::BadEscape)),
                            }
                        }
                        _ => return Err(ProgramError::at(pos, Reason::BadEscape)),
                    }
                }
                Some(c) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }

    fn hex_string(&mut self, quote: char, start: Pos) -> Result<Vec<u8>, ProgramError> {
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        loop {
            let pos = self.pos();
            match self.bump() {
                None | Some('\n') => {
                    return Err(ProgramError::at(start, Reason::UnterminatedString));
                }
                Some(c) if c == quote => {
                    return if high.is_some() {
                        Err(ProgramError::at(start, Reason::OddHexDigits))
                    } else {
                        Ok(out)
                    };
                }
                Some(c) if c.is_whitespace() || c == '_' => {}
                Some(c) => {
                    let Some(d) = c.to_digit(16) else {
                        return Err(ProgramError::at(pos, Reason::BadHexDigit(c)));
                    };
                    let d = d as u8;
                    match high.take() {
                        Some(h) => out.push(h << 4 | d),
                        None => high = Some(d),
                    }
                }
            }
        }
    }
}

/// Parses an integer literal: decimal, `0x`/`0X` hex, `0b` binary, `0o` octal; `_` allowed.
pub(crate) fn parse_int(text: &str) -> Option<u64> {
    let t: String = text.chars().filter(|&c| c != '_').collect();
    let (digits, radix) = match t.get(..2) {
        Some("0x" | "0X") => (&t[2..], 16),
        Some("0b" | "0B") => (&t[2..], 2),
        Some("0o" | "0O") => (&t[2..], 8),
        _ => (&t[..], 10),
    };
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        Lexer::new(src)
            .tokenize()
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn tokens_of_a_line() {
        assert_eq!(
            kinds("top: read cc, count=0x10 data=x\"de ad\" # c\n"),
            vec![
                Tok::Ident("top".into()),
                Tok::Colon,
                Tok::Ident("read".into()),
                Tok::Ident("cc".into()),
                Tok::Comma,
                Tok::Ident("count".into()),
                Tok::Equals,
                Tok::Int(16),
                Tok::Ident("data".into()),
                Tok::Equals,
                Tok::Hex(vec![0xde, 0xad]),
                Tok::Newline,
            ]
        );
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            kinds(r#""a\x41\n" 'q'"#),
            vec![
                Tok::Str(b"aA\n".to_vec()),
                Tok::Str(b"q".to_vec()),
                Tok::Newline
            ]
        );
    }

    #[test]
    fn positions_are_one_based() {
        let toks = Lexer::new("a\n  b").tokenize().unwrap();
        assert_eq!(toks[2].pos, Pos { line: 2, column: 3 });
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = Lexer::new("read $").tokenize().unwrap_err();
        assert_eq!((e.pos.line, e.pos.column), (1, 6));
        assert_eq!(e.reason, Reason::UnexpectedChar('$'));
        let e = Lexer::new("x\"abc\"").tokenize().unwrap_err();
        assert_eq!(e.reason, Reason::OddHexDigits);
        let e = Lexer::new("\"open").tokenize().unwrap_err();
        assert_eq!(e.reason, Reason::UnterminatedString);
        let e = Lexer::new("0xZZ").tokenize().unwrap_err();
        assert!(matches!(e.reason, Reason::BadNumber(_)));
        let e = Lexer::new("99999999999999999999999")
            .tokenize()
            .unwrap_err();
        assert!(matches!(e.reason, Reason::BadNumber(_)));
    }

    #[test]
    fn integer_forms() {
        assert_eq!(parse_int("0x1_0"), Some(16));
        assert_eq!(parse_int("0b101"), Some(5));
        assert_eq!(parse_int("0o17"), Some(15));
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int("0x"), None);
    }
}
