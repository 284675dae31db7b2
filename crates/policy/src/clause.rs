//! Clause ids (SPEC §2): the one way every requirement, control, test and
//! record cites the policy.
//!
//! `K16.2.1` = 基準 第16条 第2項 第1号. The document letter is `Y` (要綱),
//! `K` (基準) or `P` (the preface on 指定管理者); then article, paragraph
//! (the first, unnumbered paragraph is 1), item (号), and up to two levels of
//! sub-items (ア, イ, ウ… written a, b, c…; a second level, written (ア)… in
//! Japanese, as a second letter).
//!
//! The string form is canonical: parsing accepts exactly what [`Display`]
//! writes (no leading zeros, no spaces, lowercase sub-item letters), so a
//! clause id can be used as a key in the catalog, in URLs and in records.
//!
//! [`Display`]: std::fmt::Display

use std::fmt;
use std::num::{NonZeroU16, NonZeroU8};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which part of the policy a clause id points into.
///
/// Ordered as the policy text is: preface, 要綱, 基準.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Document {
    /// 適用対象 (the preface on 指定管理者), letter `P`.
    Preface,
    /// 江戸川区情報管理安全対策要綱 (the basic policy), letter `Y`.
    BasicPolicy,
    /// 江戸川区情報管理安全対策基準 (the standards), letter `K`.
    Standards,
}

impl Document {
    /// The letter used in clause ids.
    pub const fn letter(self) -> char {
        match self {
            Document::Preface => 'P',
            Document::BasicPolicy => 'Y',
            Document::Standards => 'K',
        }
    }

    /// The document as it is cited in Japanese.
    pub const fn name_ja(self) -> &'static str {
        match self {
            Document::Preface => "適用対象",
            Document::BasicPolicy => "要綱",
            Document::Standards => "基準",
        }
    }

    /// The document for a clause-id letter.
    pub const fn from_letter(letter: char) -> Option<Self> {
        match letter {
            'P' => Some(Document::Preface),
            'Y' => Some(Document::BasicPolicy),
            'K' => Some(Document::Standards),
            _ => None,
        }
    }
}

/// A level of a clause id, used to say where a parse went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// 条
    Article,
    /// 項
    Paragraph,
    /// 号
    Item,
    /// ア, イ, ウ…
    SubItem,
    /// (ア), (イ), (ウ)… under a sub-item.
    SubSubItem,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Article => "article (条)",
            Level::Paragraph => "paragraph (項)",
            Level::Item => "item (号)",
            Level::SubItem => "sub-item (ア, イ…)",
            Level::SubSubItem => "second-level sub-item ((ア), (イ)…)",
        })
    }
}

/// What is wrong with a clause id string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClauseIdError {
    /// The input is empty.
    #[error("clause id is empty; expected e.g. K16.2.1")]
    Empty,
    /// The first character is not a document letter.
    #[error(
        "clause id {input:?} must start with Y (要綱), K (基準) or P (preface), found {found:?}"
    )]
    UnknownDocument {
        /// The whole input.
        input: String,
        /// The offending first character.
        found: char,
    },
    /// A level is empty: nothing after the letter, two dots in a row, or a
    /// trailing dot.
    #[error("clause id {input:?}: the {level} is missing")]
    Missing {
        /// The whole input.
        input: String,
        /// The level that is empty.
        level: Level,
    },
    /// A numbered level is not a number from 1 to 65535 written without
    /// leading zeros.
    #[error("clause id {input:?}: the {level} must be a number from 1 to 65535 without leading zeros, found {found:?}")]
    BadNumber {
        /// The whole input.
        input: String,
        /// The level that is wrong.
        level: Level,
        /// The text found at that level.
        found: String,
    },
    /// A sub-item level is not one letter a–z.
    #[error("clause id {input:?}: the {level} must be one lowercase letter a–z (ア = a, イ = b, …), found {found:?}")]
    BadLetter {
        /// The whole input.
        input: String,
        /// The level that is wrong.
        level: Level,
        /// The text found at that level.
        found: String,
    },
    /// More levels than article, paragraph, item and two sub-items.
    #[error("clause id {input:?} has too many levels; at most article.paragraph.item.sub.sub, e.g. K27.1.2.a.b")]
    TooManyLevels {
        /// The whole input.
        input: String,
    },
}

/// The sub-item kana in 五十音 order; index 0 is `a`.
const SUB_ITEM_KANA: [char; 26] = [
    'ア', 'イ', 'ウ', 'エ', 'オ', 'カ', 'キ', 'ク', 'ケ', 'コ', 'サ', 'シ', 'ス', 'セ', 'ソ', 'タ',
    'チ', 'ツ', 'テ', 'ト', 'ナ', 'ニ', 'ヌ', 'ネ', 'ノ', 'ハ',
];

/// A clause of the policy, e.g. `K11.1.2` (基準第11条第1項第2号).
///
/// Ordered by document, then article, paragraph, item and sub-items, with a
/// shorter id before the ids inside it (`K11` < `K11.1` < `K11.1.2` < `K12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClauseId {
    // Field order is the sort order.
    document: Document,
    article: NonZeroU16,
    paragraph: Option<NonZeroU16>,
    item: Option<NonZeroU16>,
    // 1 = a (ア); at most 26.
    sub_item: Option<NonZeroU8>,
    sub_sub_item: Option<NonZeroU8>,
}

impl ClauseId {
    /// The whole article, e.g. `K11`. `None` if `article` is 0.
    pub fn article_of(document: Document, article: u16) -> Option<Self> {
        Some(ClauseId {
            document,
            article: NonZeroU16::new(article)?,
            paragraph: None,
            item: None,
            sub_item: None,
            sub_sub_item: None,
        })
    }

    /// A paragraph, e.g. `K17.3`. `None` if either number is 0.
    pub fn paragraph_of(document: Document, article: u16, paragraph: u16) -> Option<Self> {
        Some(ClauseId {
            paragraph: Some(NonZeroU16::new(paragraph)?),
            ..Self::article_of(document, article)?
        })
    }

    /// An item (号), e.g. `K11.1.2`. `None` if any number is 0.
    pub fn item_of(document: Document, article: u16, paragraph: u16, item: u16) -> Option<Self> {
        Some(ClauseId {
            item: Some(NonZeroU16::new(item)?),
            ..Self::paragraph_of(document, article, paragraph)?
        })
    }

    /// This item's sub-item `letter` (`'a'` = ア), or the next level down
    /// if this id already has a sub-item. `None` if this id has no item,
    /// already has two sub-item levels, or `letter` is not `a`–`z`.
    pub fn sub_item(self, letter: char) -> Option<Self> {
        self.item?;
        let n = letter_index(letter)?;
        match (self.sub_item, self.sub_sub_item) {
            (None, _) => Some(ClauseId {
                sub_item: Some(n),
                ..self
            }),
            (Some(_), None) => Some(ClauseId {
                sub_sub_item: Some(n),
                ..self
            }),
            (Some(_), Some(_)) => None,
        }
    }

    /// The document this clause is in.
    pub fn document(&self) -> Document {
        self.document
    }

    /// 条
    pub fn article(&self) -> u16 {
        self.article.get()
    }

    /// 項 (the first, unnumbered paragraph is 1).
    pub fn paragraph(&self) -> Option<u16> {
        self.paragraph.map(NonZeroU16::get)
    }

    /// 号
    pub fn item(&self) -> Option<u16> {
        self.item.map(NonZeroU16::get)
    }

    /// The sub-item letters, outer first: `K27.1.2.a.b` gives `['a', 'b']`.
    pub fn sub_items(&self) -> Vec<char> {
        [self.sub_item, self.sub_sub_item]
            .into_iter()
            .flatten()
            .filter_map(index_letter)
            .collect()
    }

    /// The clause one level up (`K11.1.2` → `K11.1`), or `None` for an
    /// article.
    pub fn parent(&self) -> Option<Self> {
        let mut up = *self;
        if up.sub_sub_item.take().is_some()
            || up.sub_item.take().is_some()
            || up.item.take().is_some()
            || up.paragraph.take().is_some()
        {
            Some(up)
        } else {
            None
        }
    }

    /// Whether `self` is `other` or lies inside it (`K11.1.2` is within
    /// `K11.1` and `K11`, not within `K11.2`).
    pub fn is_within(&self, other: &ClauseId) -> bool {
        let mut c = Some(*self);
        while let Some(id) = c {
            if id == *other {
                return true;
            }
            c = id.parent();
        }
        false
    }

    /// The Japanese citation: `K16.2.1` → 「基準第16条第2項第1号」,
    /// `K27.1.2.a` → 「基準第27条第1項第2号ア」, `Y4.3` → 「要綱第4条第3項」.
    ///
    /// The first paragraph is written 第1項 only when an item follows
    /// (`K11.1.2` → 「基準第11条第1項第2号」, but `K17.1` → 「基準第17条」): the
    /// first paragraph carries no number in the policy text, and an article
    /// cited alone is read as its opening paragraph; with an item, 第1項
    /// keeps the 号 from being read as belonging to another paragraph.
    /// (Japanese drafting omits 第1項 for single-paragraph articles; knowing
    /// that needs the clause catalog, so this function does not try.) A
    /// second-level sub-item is written in parentheses: 「…第2号ア（イ）」.
    /// The preface numbers its sections 1．2．, cited as 「適用対象2」.
    pub fn ja(&self) -> String {
        let mut s = String::from(self.document.name_ja());
        if self.document == Document::Preface {
            s.push_str(&self.article.to_string());
        } else {
            s.push_str(&format!("第{}条", self.article));
        }
        if let Some(p) = self.paragraph {
            if p.get() != 1 || self.item.is_some() {
                s.push_str(&format!("第{p}項"));
            }
        }
        if let Some(i) = self.item {
            s.push_str(&format!("第{i}号"));
        }
        if let Some(k) = self.sub_item.and_then(index_kana) {
            s.push(k);
        }
        if let Some(k) = self.sub_sub_item.and_then(index_kana) {
            s.push('（');
            s.push(k);
            s.push('）');
        }
        s
    }
}

fn letter_index(letter: char) -> Option<NonZeroU8> {
    if letter.is_ascii_lowercase() {
        NonZeroU8::new(letter as u8 - b'a' + 1)
    } else {
        None
    }
}

fn index_letter(n: NonZeroU8) -> Option<char> {
    let i = n.get().checked_sub(1)?;
    (i < 26).then(|| char::from(b'a' + i))
}

fn index_kana(n: NonZeroU8) -> Option<char> {
    SUB_ITEM_KANA.get(usize::from(n.get()) - 1).copied()
}

fn parse_number(input: &str, level: Level, text: &str) -> Result<NonZeroU16, ClauseIdError> {
    if text.is_empty() {
        return Err(ClauseIdError::Missing {
            input: input.to_owned(),
            level,
        });
    }
    let bad = || ClauseIdError::BadNumber {
        input: input.to_owned(),
        level,
        found: text.to_owned(),
    };
    // `u16::from_str` accepts a leading '+', and leading zeros would not
    // round-trip, so insist on plain digits not starting with 0.
    if !text.bytes().all(|b| b.is_ascii_digit()) || text.starts_with('0') {
        return Err(bad());
    }
    text.parse::<u16>()
        .ok()
        .and_then(NonZeroU16::new)
        .ok_or_else(bad)
}

fn parse_letter(input: &str, level: Level, text: &str) -> Result<NonZeroU8, ClauseIdError> {
    if text.is_empty() {
        return Err(ClauseIdError::Missing {
            input: input.to_owned(),
            level,
        });
    }
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => letter_index(c),
        _ => None,
    }
    .ok_or_else(|| ClauseIdError::BadLetter {
        input: input.to_owned(),
        level,
        found: text.to_owned(),
    })
}

impl FromStr for ClauseId {
    type Err = ClauseIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut chars = input.chars();
        let first = chars.next().ok_or(ClauseIdError::Empty)?;
        let document =
            Document::from_letter(first).ok_or_else(|| ClauseIdError::UnknownDocument {
                input: input.to_owned(),
                found: first,
            })?;
        let mut parts = chars.as_str().split('.');
        let article = parse_number(input, Level::Article, parts.next().unwrap_or(""))?;
        let mut id = ClauseId {
            document,
            article,
            paragraph: None,
            item: None,
            sub_item: None,
            sub_sub_item: None,
        };
        if let Some(p) = parts.next() {
            id.paragraph = Some(parse_number(input, Level::Paragraph, p)?);
        }
        if let Some(i) = parts.next() {
            id.item = Some(parse_number(input, Level::Item, i)?);
        }
        if let Some(a) = parts.next() {
            id.sub_item = Some(parse_letter(input, Level::SubItem, a)?);
        }
        if let Some(b) = parts.next() {
            id.sub_sub_item = Some(parse_letter(input, Level::SubSubItem, b)?);
        }
        if parts.next().is_some() {
            return Err(ClauseIdError::TooManyLevels {
                input: input.to_owned(),
            });
        }
        Ok(id)
    }
}

impl TryFrom<&str> for ClauseId {
    type Error = ClauseIdError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for ClauseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.document.letter(), self.article)?;
        for n in [self.paragraph, self.item].into_iter().flatten() {
            write!(f, ".{n}")?;
        }
        for c in self.sub_items() {
            write!(f, ".{c}")?;
        }
        Ok(())
    }
}

impl Serialize for ClauseId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClauseId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input`, and checks it displays back unchanged and cites as `ja`.
    fn check(input: &str, ja: &str) {
        let id: ClauseId = input
            .parse()
            .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"));
        assert_eq!(id.to_string(), input, "display of {input:?}");
        assert_eq!(id.ja(), ja, "ja of {input:?}");
    }

    #[test]
    fn parses_displays_and_cites() {
        let table = [
            ("K16.2.1", "基準第16条第2項第1号"),
            ("K11.1.2", "基準第11条第1項第2号"),
            ("K27.1.2.a", "基準第27条第1項第2号ア"),
            ("K3.1.1.b", "基準第3条第1項第1号イ"),
            ("K27.1.2.a.b", "基準第27条第1項第2号ア（イ）"),
            ("K8.1.8.h", "基準第8条第1項第8号ク"),
            ("Y4.3", "要綱第4条第3項"),
            ("Y4.1", "要綱第4条"),
            ("Y2.1.10", "要綱第2条第1項第10号"),
            ("K11", "基準第11条"),
            ("K17.1", "基準第17条"),
            ("K17.4", "基準第17条第4項"),
            ("P2", "適用対象2"),
            ("P1", "適用対象1"),
            (
                "K65535.65535.65535.z.z",
                "基準第65535条第65535項第65535号ハ（ハ）",
            ),
        ];
        for (input, ja) in table {
            check(input, ja);
        }
    }

    #[test]
    fn rejects_garbage_and_says_what_is_wrong() {
        use ClauseIdError as E;
        let input = |s: &str| s.to_owned();
        let table: Vec<(&str, ClauseIdError)> = vec![
            ("", E::Empty),
            (
                "X11",
                E::UnknownDocument {
                    input: input("X11"),
                    found: 'X',
                },
            ),
            (
                "k11",
                E::UnknownDocument {
                    input: input("k11"),
                    found: 'k',
                },
            ),
            (
                "基準11",
                E::UnknownDocument {
                    input: input("基準11"),
                    found: '基',
                },
            ),
            (
                " K11",
                E::UnknownDocument {
                    input: input(" K11"),
                    found: ' ',
                },
            ),
            (
                "K",
                E::Missing {
                    input: input("K"),
                    level: Level::Article,
                },
            ),
            (
                "K.1",
                E::Missing {
                    input: input("K.1"),
                    level: Level::Article,
                },
            ),
            (
                "K11.",
                E::Missing {
                    input: input("K11."),
                    level: Level::Paragraph,
                },
            ),
            (
                "K11..2",
                E::Missing {
                    input: input("K11..2"),
                    level: Level::Paragraph,
                },
            ),
            (
                "K11.1.2.",
                E::Missing {
                    input: input("K11.1.2."),
                    level: Level::SubItem,
                },
            ),
            (
                "K0",
                E::BadNumber {
                    input: input("K0"),
                    level: Level::Article,
                    found: input("0"),
                },
            ),
            (
                "K011",
                E::BadNumber {
                    input: input("K011"),
                    level: Level::Article,
                    found: input("011"),
                },
            ),
            (
                "K+11",
                E::BadNumber {
                    input: input("K+11"),
                    level: Level::Article,
                    found: input("+11"),
                },
            ),
            (
                "K11.0",
                E::BadNumber {
                    input: input("K11.0"),
                    level: Level::Paragraph,
                    found: input("0"),
                },
            ),
            (
                "K65536",
                E::BadNumber {
                    input: input("K65536"),
                    level: Level::Article,
                    found: input("65536"),
                },
            ),
            (
                "K11 ",
                E::BadNumber {
                    input: input("K11 "),
                    level: Level::Article,
                    found: input("11 "),
                },
            ),
            (
                "K１１",
                E::BadNumber {
                    input: input("K１１"),
                    level: Level::Article,
                    found: input("１１"),
                },
            ),
            (
                "K16.3.2-3",
                E::BadNumber {
                    input: input("K16.3.2-3"),
                    level: Level::Item,
                    found: input("2-3"),
                },
            ),
            (
                "K27.1.a",
                E::BadNumber {
                    input: input("K27.1.a"),
                    level: Level::Item,
                    found: input("a"),
                },
            ),
            (
                "K27.1.2.A",
                E::BadLetter {
                    input: input("K27.1.2.A"),
                    level: Level::SubItem,
                    found: input("A"),
                },
            ),
            (
                "K27.1.2.ア",
                E::BadLetter {
                    input: input("K27.1.2.ア"),
                    level: Level::SubItem,
                    found: input("ア"),
                },
            ),
            (
                "K27.1.2.ab",
                E::BadLetter {
                    input: input("K27.1.2.ab"),
                    level: Level::SubItem,
                    found: input("ab"),
                },
            ),
            (
                "K27.1.2.a.1",
                E::BadLetter {
                    input: input("K27.1.2.a.1"),
                    level: Level::SubSubItem,
                    found: input("1"),
                },
            ),
            (
                "K27.1.2.a.b.c",
                E::TooManyLevels {
                    input: input("K27.1.2.a.b.c"),
                },
            ),
        ];
        for (s, expected) in table {
            assert_eq!(s.parse::<ClauseId>(), Err(expected), "input {s:?}");
        }
        // The message names the level and what was found.
        let msg = "K27.1.a".parse::<ClauseId>().err().map(|e| e.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("clause id \"K27.1.a\": the item (号) must be a number from 1 to 65535 without leading zeros, found \"a\"")
        );
    }

    #[test]
    fn orders_by_document_then_numbers_then_depth() {
        let mut ids: Vec<ClauseId> = [
            "K12",
            "K11.2",
            "K11.1.2",
            "K11",
            "K11.1",
            "Y4.3",
            "P2",
            "K2",
            "K11.1.2.a",
            "K11.1.10",
            "Y12",
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
        ids.sort();
        let sorted: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(
            sorted,
            [
                "P2",
                "Y4.3",
                "Y12",
                "K2",
                "K11",
                "K11.1",
                "K11.1.2",
                "K11.1.2.a",
                "K11.1.10",
                "K11.2",
                "K12"
            ]
        );
    }

    #[test]
    fn builds_walks_up_and_nests() {
        let k11_1_2 = ClauseId::item_of(Document::Standards, 11, 1, 2);
        assert_eq!(k11_1_2, "K11.1.2".parse().ok());
        let Some(k11_1_2) = k11_1_2 else { return };
        assert_eq!(
            k11_1_2.sub_item('a').map(|c| c.to_string()).as_deref(),
            Some("K11.1.2.a")
        );
        assert_eq!(
            k11_1_2
                .sub_item('a')
                .and_then(|c| c.sub_item('c'))
                .map(|c| c.to_string())
                .as_deref(),
            Some("K11.1.2.a.c")
        );
        assert_eq!(k11_1_2.sub_item('A'), None);
        assert_eq!(
            ClauseId::paragraph_of(Document::Standards, 17, 3).and_then(|c| c.sub_item('a')),
            None
        );
        assert_eq!(ClauseId::article_of(Document::BasicPolicy, 0), None);
        assert_eq!(
            k11_1_2.parent().map(|c| c.to_string()).as_deref(),
            Some("K11.1")
        );
        assert_eq!(
            ClauseId::article_of(Document::Standards, 11).and_then(|c| c.parent()),
            None
        );
        let k11: ClauseId = "K11".parse().unwrap_or(k11_1_2);
        let k11_2: ClauseId = "K11.2".parse().unwrap_or(k11_1_2);
        assert!(k11_1_2.is_within(&k11));
        assert!(k11_1_2.is_within(&k11_1_2));
        assert!(!k11_1_2.is_within(&k11_2));
        assert!(!k11.is_within(&k11_1_2));
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Row {
            clause: ClauseId,
        }
        let row: Result<Row, _> = toml::from_str(r#"clause = "K27.1.2.a""#);
        let clause = row.map(|r| r.clause.to_string()).map_err(|e| e.to_string());
        assert_eq!(clause.as_deref(), Ok("K27.1.2.a"));
        let back = "K27.1.2.a"
            .parse()
            .map(|clause| toml::to_string(&Row { clause }).unwrap_or_default());
        assert_eq!(back.as_deref(), Ok("clause = \"K27.1.2.a\"\n"));
        let bad: Result<Row, _> = toml::from_str(r#"clause = "K27.1.a""#);
        let err = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("item (号)"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_accepts_only_canonical_strings(s in "\\PC{0,24}|[KYPX][0-9.a-z]{0,16}") {
            if let Ok(id) = s.parse::<ClauseId>() {
                proptest::prop_assert_eq!(id.to_string(), s);
                let _ = id.ja();
            }
        }

        #[test]
        fn round_trips(
            doc in 0u8..3,
            article in 1u16..,
            paragraph in proptest::option::of(1u16..),
            item in proptest::option::of(1u16..),
            subs in proptest::collection::vec(proptest::char::range('a', 'z'), 0..=2),
        ) {
            let document = [Document::Preface, Document::BasicPolicy, Document::Standards][usize::from(doc)];
            let mut s = format!("{}{article}", document.letter());
            if let Some(p) = paragraph {
                s.push_str(&format!(".{p}"));
                if let Some(i) = item {
                    s.push_str(&format!(".{i}"));
                    for c in &subs {
                        s.push('.');
                        s.push(*c);
                    }
                }
            }
            let id: Result<ClauseId, _> = s.parse();
            proptest::prop_assert!(id.is_ok(), "{s}: {id:?}");
            if let Ok(id) = id {
                proptest::prop_assert_eq!(id.to_string(), s.clone());
                proptest::prop_assert_eq!(id.to_string().parse::<ClauseId>(), Ok(id));
                proptest::prop_assert_eq!(id.article(), article);
            }
        }
    }
}
