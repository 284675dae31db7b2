//! Reads the policy text (`policy/edogawa-security-policy.ja.txt`, a
//! byte-identical copy of the ward's file) into clauses, notes and 付則.
//!
//! The text is a PDF extraction turned into lines, and the parser follows
//! how THIS file writes things:
//! - an article is a line `第N条 …` (sometimes `第 N 条`), preceded by its
//!   heading `(目的等)` (sometimes written `- (…)`);
//! - a numbered paragraph (項) is `N …`, `- N …` or ` - N …` (the first
//!   paragraph is the article line itself and carries no number);
//! - an item (号) is `(N) …`, possibly behind `- `;
//! - a sub-item is `ア …`, `イ …`, possibly behind `- `;
//! - a page break cuts a sentence: the rest of it is a line matching none of
//!   the above, and is joined to the clause it continues with no separator
//!   (Japanese has no spaces between words);
//! - the table of contents lists headings with page numbers and is skipped;
//!   the 別表, the preface's footnotes and chapter 1 become notes;
//! - each document ends with its 付則 (supplementary provisions), one per
//!   amendment, each giving the date it took effect.
//!
//! Nothing panics: a line that breaks the numbering is reported as a
//! problem, and the catalog test insists there are none.

use time::Date;

use crate::clause::{ClauseId, Document};
use crate::wareki;

/// A clause as found in the text, before gists and controls are attached.
#[derive(Debug, Clone)]
pub(crate) struct RawClause {
    pub id: ClauseId,
    pub heading: Option<String>,
    pub text: String,
    /// 1-based line numbers in the source file this clause's own words come from.
    pub lines: Vec<usize>,
}

/// A passage that is not a clause (preface preamble and footnotes, chapter
/// 1, the 別表).
#[derive(Debug, Clone)]
pub(crate) struct RawNote {
    pub key: String,
    pub title: String,
    pub text: String,
    pub lines: Vec<usize>,
}

/// One 付則 (supplementary provision).
#[derive(Debug, Clone)]
pub(crate) struct RawProvision {
    pub document: Document,
    /// 1 for the first 付則 of the document.
    pub ordinal: usize,
    pub text: String,
    pub effective: Option<Date>,
    pub lines: Vec<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub clauses: Vec<RawClause>,
    pub notes: Vec<RawNote>,
    pub provisions: Vec<RawProvision>,
    /// Heading lines (article headings, chapter titles, 付則 markers, TOC):
    /// lines that are accounted for without belonging to a clause.
    pub structural_lines: Vec<usize>,
    pub problems: Vec<String>,
}

/// The line as its words: without the leading spaces and the `- ` list
/// markers the extraction added.
fn body(line: &str) -> &str {
    let mut s = line.trim_start();
    while let Some(rest) = s.strip_prefix("- ") {
        s = rest.trim_start();
    }
    s.trim_end()
}

/// `第N条 rest` → (N, rest).
fn article_line(s: &str) -> Option<(u16, &str)> {
    let rest = s.strip_prefix('第')?.trim_start();
    let digits_end = rest.find(|c: char| !c.is_ascii_digit())?;
    let n: u16 = rest.get(..digits_end)?.parse().ok()?;
    let rest = rest.get(digits_end..)?.trim_start().strip_prefix('条')?;
    let text = rest.strip_prefix(' ')?.trim_start();
    Some((n, text))
}

/// `N rest` (a numbered paragraph) → (N, rest).
fn paragraph_line(s: &str) -> Option<(u16, &str)> {
    let digits_end = s.find(|c: char| !c.is_ascii_digit())?;
    if digits_end == 0 {
        return None;
    }
    let n: u16 = s.get(..digits_end)?.parse().ok()?;
    let text = s.get(digits_end..)?.strip_prefix(' ')?.trim_start();
    Some((n, text))
}

/// `(N) rest` or `（N） rest` (an item) → (N, rest).
fn item_line(s: &str) -> Option<(u16, &str)> {
    let rest = s.strip_prefix('(').or_else(|| s.strip_prefix('（'))?;
    let digits_end = rest.find(|c: char| !c.is_ascii_digit())?;
    if digits_end == 0 {
        return None;
    }
    let n: u16 = rest.get(..digits_end)?.parse().ok()?;
    let rest = rest.get(digits_end..)?;
    let rest = rest.strip_prefix(')').or_else(|| rest.strip_prefix('）'))?;
    let text = rest.strip_prefix(' ')?.trim_start();
    Some((n, text))
}

/// The kana of sub-items in order: ア = a.
pub(crate) const SUB_ITEM_KANA: [char; 10] = ['ア', 'イ', 'ウ', 'エ', 'オ', 'カ', 'キ', 'ク', 'ケ', 'コ'];

/// `ア rest` (a sub-item) → (letter a…, rest).
fn sub_item_line(s: &str) -> Option<(char, &str)> {
    let mut chars = s.chars();
    let kana = chars.next()?;
    let index = SUB_ITEM_KANA.iter().position(|k| *k == kana)?;
    let text = chars.as_str().strip_prefix(' ')?.trim_start();
    let letter = char::from(b'a' + u8::try_from(index).ok()?);
    Some((letter, text))
}

/// `(目的等)` → `目的等`; a heading never starts with a digit.
fn heading_line(s: &str) -> Option<&str> {
    let inner = s
        .strip_prefix('(')
        .or_else(|| s.strip_prefix('（'))?
        .strip_suffix(')')
        .or_else(|| {
            s.strip_prefix('(')
                .or_else(|| s.strip_prefix('（'))
                .and_then(|r| r.strip_suffix('）'))
        })?;
    if inner.is_empty() || inner.starts_with(|c: char| c.is_ascii_digit() || c == ' ') {
        return None;
    }
    Some(inner)
}

/// The first 和暦 date written in `text` (spaces inside are ignored).
pub(crate) fn first_date(text: &str) -> Option<Date> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let start = ["明治", "大正", "昭和", "平成", "令和"]
        .iter()
        .filter_map(|era| compact.find(era))
        .min()?;
    let rest = compact.get(start..)?;
    let end = rest.find('日')? + '日'.len_utf8();
    wareki::parse_date(rest.get(..end)?)
}

struct Region {
    start: usize,
    end: usize,
}

/// Index of the first line (from `from`) whose trimmed form equals `s`.
fn find_line(lines: &[&str], from: usize, s: &str) -> Option<usize> {
    (from..lines.len()).find(|&i| lines.get(i).is_some_and(|l| l.trim() == s))
}

pub(crate) fn parse(source: &str) -> Parsed {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Parsed::default();
    // The regions of the file, located by their exact title lines (the table
    // of contents writes the same titles followed by a tab and a page
    // number, so exact equality skips it).
    let toc = find_line(&lines, 0, "江戸川区情報セキュリティポリシー");
    let chapter1 = toc.and_then(|t| find_line(&lines, t, "第1章 情報セキュリティポリシーの位置付け、構成"));
    let y_start = chapter1.and_then(|c| find_line(&lines, c, "第2章 江戸川区情報管理安全対策要綱"));
    let y_fusoku = y_start.and_then(|y| find_line(&lines, y, "付 則"));
    let appendix = y_fusoku.and_then(|f| {
        (f..lines.len()).find(|&i| lines.get(i).is_some_and(|l| l.trim().starts_with("別表第一")))
    });
    let k_start = appendix.and_then(|a| find_line(&lines, a, "第3章 江戸川区情報管理安全対策基準"));
    let k_fusoku = k_start.and_then(|k| find_line(&lines, k, "付 則"));
    let (
        Some(toc),
        Some(chapter1),
        Some(y_start),
        Some(y_fusoku),
        Some(appendix),
        Some(k_start),
        Some(k_fusoku),
    ) = (toc, chapter1, y_start, y_fusoku, appendix, k_start, k_fusoku)
    else {
        out.problems.push(
            "the policy text does not have the expected parts (preface, contents, chapters 1–3, 付則, 別表)"
                .to_owned(),
        );
        return out;
    };
    preface(&lines, Region { start: 0, end: toc }, &mut out);
    for i in toc..chapter1 {
        out.structural_lines.push(i + 1);
    }
    note_block(&lines, Region { start: chapter1 + 1, end: y_start }, "chapter1", "第1章 情報セキュリティポリシーの位置付け、構成", &mut out);
    out.structural_lines.extend([chapter1 + 1, y_start + 1, k_start + 1]);
    articles(&lines, Region { start: y_start + 1, end: y_fusoku }, Document::BasicPolicy, &mut out);
    provisions(&lines, Region { start: y_fusoku, end: appendix }, Document::BasicPolicy, &mut out);
    appendices(&lines, Region { start: appendix, end: k_start }, &mut out);
    articles(&lines, Region { start: k_start + 1, end: k_fusoku }, Document::Standards, &mut out);
    provisions(&lines, Region { start: k_fusoku, end: lines.len() }, Document::Standards, &mut out);
    out
}

/// The preface: a title, a preamble, sections `1．` and `2．` (P1, P2),
/// and footnotes `- 1 …`.
fn preface(lines: &[&str], region: Region, out: &mut Parsed) {
    let mut section: Option<(u16, String, Vec<usize>, Vec<(String, usize)>)> = None;
    let mut preamble_seen = false;
    let mut title_seen = false;
    let flush = |section: &mut Option<(u16, String, Vec<usize>, Vec<(String, usize)>)>, out: &mut Parsed| {
        let Some((n, heading, heading_lines, paras)) = section.take() else { return };
        let Some(article) = ClauseId::article_of(Document::Preface, n) else { return };
        // A line opening with （ right under the heading (the example in
        // section 1) belongs to the heading.
        let mut heading = heading;
        let mut lines_used = heading_lines;
        let mut paras = paras.into_iter().peekable();
        if let Some((p, _)) = paras.peek() {
            if p.starts_with('（') {
                if let Some((p, l)) = paras.next() {
                    heading.push_str(&p);
                    lines_used.push(l);
                }
            }
        }
        let paras: Vec<(String, usize)> = paras.collect();
        out.structural_lines.extend(lines_used);
        let text = paras.first().map(|(t, _)| t.clone()).unwrap_or_default();
        out.clauses.push(RawClause {
            id: article,
            heading: Some(heading),
            text,
            lines: paras.first().map(|(_, l)| vec![*l]).unwrap_or_default(),
        });
        if paras.len() > 1 {
            for (i, (t, l)) in paras.iter().enumerate() {
                let Some(id) = u16::try_from(i + 1)
                    .ok()
                    .and_then(|p| ClauseId::paragraph_of(Document::Preface, n, p))
                else {
                    continue;
                };
                out.clauses.push(RawClause {
                    id,
                    heading: None,
                    text: t.clone(),
                    lines: vec![*l],
                });
            }
        }
    };
    let mut footnote = 0;
    for i in region.start..region.end {
        let Some(raw) = lines.get(i) else { continue };
        let s = body(raw);
        let lineno = i + 1;
        if s.is_empty() {
            continue;
        }
        if !title_seen {
            title_seen = true;
            out.notes.push(RawNote {
                key: "P.title".into(),
                title: "表題".into(),
                text: s.to_owned(),
                lines: vec![lineno],
            });
            continue;
        }
        // Sections are `1．…` with a full-width full stop.
        if let Some((n, rest)) = s.split_once('．').and_then(|(d, r)| d.parse::<u16>().ok().map(|n| (n, r))) {
            flush(&mut section, out);
            section = Some((n, rest.trim().to_owned(), vec![lineno], Vec::new()));
            continue;
        }
        if raw.trim_start().starts_with("- ") {
            if let Some((n, text)) = paragraph_line(s) {
                flush(&mut section, out);
                footnote += 1;
                if usize::from(n) != footnote {
                    out.problems.push(format!("line {lineno}: footnote {n} out of order"));
                }
                out.notes.push(RawNote {
                    key: format!("P.note{n}"),
                    title: format!("注{n}"),
                    text: text.to_owned(),
                    lines: vec![lineno],
                });
                continue;
            }
        }
        match section.as_mut() {
            Some((_, _, _, paras)) => paras.push((s.to_owned(), lineno)),
            None if !preamble_seen => {
                preamble_seen = true;
                out.notes.push(RawNote {
                    key: "P.preamble".into(),
                    title: "前文".into(),
                    text: s.to_owned(),
                    lines: vec![lineno],
                });
            }
            None => out.problems.push(format!("line {lineno}: unexpected text in the preface")),
        }
    }
    flush(&mut section, out);
}

/// A run of lines kept whole as one note.
fn note_block(lines: &[&str], region: Region, key: &str, title: &str, out: &mut Parsed) {
    let mut text = Vec::new();
    let mut used = Vec::new();
    for i in region.start..region.end {
        let Some(raw) = lines.get(i) else { continue };
        let s = raw.trim();
        if s.is_empty() {
            continue;
        }
        used.push(i + 1);
        // Table rules left by the extraction are not words.
        if s.chars().all(|c| c == '-' || c.is_whitespace()) {
            continue;
        }
        text.push(s.to_owned());
    }
    out.notes.push(RawNote {
        key: key.to_owned(),
        title: title.to_owned(),
        text: text.join("\n"),
        lines: used,
    });
}

/// 別表第一 and 別表第二 (the offices and education units 要綱第2条第1号 names).
fn appendices(lines: &[&str], region: Region, out: &mut Parsed) {
    let second = (region.start..region.end)
        .find(|&i| lines.get(i).is_some_and(|l| l.trim().starts_with("別表第二")))
        .unwrap_or(region.end);
    for (key, start, end) in [("Y.appendix1", region.start, second), ("Y.appendix2", second, region.end)] {
        let title = lines.get(start).map(|l| l.trim().to_owned()).unwrap_or_default();
        out.structural_lines.push(start + 1);
        note_block(lines, Region { start: start + 1, end }, key, &title, out);
    }
}

/// The 付則 of one document: blocks opened by `付 則`.
fn provisions(lines: &[&str], region: Region, document: Document, out: &mut Parsed) {
    let mut current: Option<RawProvision> = None;
    let mut ordinal = 0;
    let finish = |p: Option<RawProvision>, out: &mut Parsed| {
        if let Some(mut p) = p {
            p.effective = first_date(&p.text);
            if p.effective.is_none() {
                out.problems.push(format!(
                    "{} 付則 {}: no effective date found in {:?}",
                    document.name_ja(),
                    p.ordinal,
                    p.text
                ));
            }
            out.provisions.push(p);
        }
    };
    for i in region.start..region.end {
        let Some(raw) = lines.get(i) else { continue };
        let s = body(raw);
        let lineno = i + 1;
        if s.is_empty() {
            continue;
        }
        if s == "付 則" {
            finish(current.take(), out);
            ordinal += 1;
            out.structural_lines.push(lineno);
            current = Some(RawProvision {
                document,
                ordinal,
                text: String::new(),
                effective: None,
                lines: Vec::new(),
            });
            continue;
        }
        let Some(p) = current.as_mut() else {
            out.problems.push(format!("line {lineno}: text before the first 付則"));
            continue;
        };
        if !p.text.is_empty() {
            p.text.push('\n');
        }
        p.text.push_str(s);
        p.lines.push(lineno);
    }
    finish(current, out);
}

#[derive(Debug)]
struct Para {
    n: u16,
    text: String,
    lines: Vec<usize>,
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    n: u16,
    text: String,
    lines: Vec<usize>,
    subs: Vec<(char, String, Vec<usize>)>,
}

#[derive(Debug)]
struct Article {
    n: u16,
    heading: Option<String>,
    paras: Vec<Para>,
}

/// The articles of 要綱 or 基準.
fn articles(lines: &[&str], region: Region, document: Document, out: &mut Parsed) {
    let mut list: Vec<Article> = Vec::new();
    let mut heading: Option<String> = None;
    for i in region.start..region.end {
        let Some(raw) = lines.get(i) else { continue };
        let s = body(raw);
        let lineno = i + 1;
        if s.is_empty() {
            continue;
        }
        let problem = |msg: String| format!("{} line {lineno}: {msg}", document.name_ja());
        if let Some(h) = heading_line(s) {
            out.structural_lines.push(lineno);
            heading = Some(h.to_owned());
            continue;
        }
        if let Some((n, text)) = article_line(s) {
            let expected = list.last().map_or(1, |a| a.n + 1);
            if n != expected {
                out.problems.push(problem(format!("article {n} where {expected} was expected")));
            }
            list.push(Article {
                n,
                heading: heading.take(),
                paras: vec![Para {
                    n: 1,
                    text: text.to_owned(),
                    lines: vec![lineno],
                    items: Vec::new(),
                }],
            });
            continue;
        }
        let Some(article) = list.last_mut() else {
            out.problems.push(problem("text before the first article".into()));
            continue;
        };
        if let Some((n, text)) = paragraph_line(s) {
            let expected = article.paras.last().map_or(1, |p| p.n + 1);
            if n != expected {
                out.problems.push(problem(format!(
                    "paragraph {n} of article {} where {expected} was expected",
                    article.n
                )));
            }
            article.paras.push(Para {
                n,
                text: text.to_owned(),
                lines: vec![lineno],
                items: Vec::new(),
            });
            continue;
        }
        let Some(para) = article.paras.last_mut() else { continue };
        if let Some((n, text)) = item_line(s) {
            let expected = para.items.last().map_or(1, |it| it.n + 1);
            if n != expected {
                out.problems.push(problem(format!(
                    "item {n} of article {} paragraph {} where {expected} was expected",
                    article.n, para.n
                )));
            }
            para.items.push(Item {
                n,
                text: text.to_owned(),
                lines: vec![lineno],
                subs: Vec::new(),
            });
            continue;
        }
        if let Some((letter, text)) = sub_item_line(s) {
            let Some(item) = para.items.last_mut() else {
                out.problems.push(problem("sub-item outside an item".into()));
                continue;
            };
            let expected = item
                .subs
                .last()
                .map_or('a', |(l, _, _)| char::from(*l as u8 + 1));
            if letter != expected {
                out.problems.push(problem(format!(
                    "sub-item {letter} of article {} item {} where {expected} was expected",
                    article.n, item.n
                )));
            }
            item.subs.push((letter, text.to_owned(), vec![lineno]));
            continue;
        }
        // A sentence cut by a page break: join it to the last clause.
        if let Some(item) = para.items.last_mut() {
            if let Some((_, text, l)) = item.subs.last_mut() {
                text.push_str(s);
                l.push(lineno);
            } else {
                item.text.push_str(s);
                item.lines.push(lineno);
            }
        } else {
            para.text.push_str(s);
            para.lines.push(lineno);
        }
    }
    for a in list {
        let Some(article_id) = ClauseId::article_of(document, a.n) else { continue };
        let first = a.paras.first();
        out.clauses.push(RawClause {
            id: article_id,
            heading: a.heading,
            text: first.map(|p| p.text.clone()).unwrap_or_default(),
            lines: first.map(|p| p.lines.clone()).unwrap_or_default(),
        });
        // An article of one paragraph without items is its own only clause
        // (Japanese drafting does not write 第1項 for it).
        let split = a.paras.len() > 1 || first.is_some_and(|p| !p.items.is_empty());
        if !split {
            continue;
        }
        for p in a.paras {
            let Some(pid) = ClauseId::paragraph_of(document, a.n, p.n) else { continue };
            out.clauses.push(RawClause {
                id: pid,
                heading: None,
                text: p.text,
                lines: p.lines,
            });
            for it in p.items {
                let Some(iid) = ClauseId::item_of(document, a.n, p.n, it.n) else { continue };
                out.clauses.push(RawClause {
                    id: iid,
                    heading: None,
                    text: it.text,
                    lines: it.lines,
                });
                for (letter, text, lines) in it.subs {
                    let Some(sid) = iid.sub_item(letter) else { continue };
                    out.clauses.push(RawClause {
                        id: sid,
                        heading: None,
                        text,
                        lines,
                    });
                }
            }
        }
    }
}
