//! Reader of a block `index` file held in memory or mapped (`B: AsRef<[u8]>`).
//!
//! At construction it checks the header, the TOC checksum and offsets, the
//! symbol table (checksum, UTF-8, strictly increasing) and the postings
//! offset table (checksum, structure, strictly increasing label pairs), and
//! keeps in memory only every 32nd symbol offset and, per label name, every
//! 32nd postings-offset entry plus the last, as Prometheus does. It also
//! reads (and checksums) the all-series postings list once, to know the
//! number of series: 4 bytes per series of I/O at open. Every later
//! read (series entries, postings lists) checks bounds and its checksum, so
//! corrupt input yields [`Error::CorruptIndex`] naming a byte offset.
//!
//! Matcher semantics are Prometheus' (`PostingsForMatchers`,
//! `labelValuesWithMatchers`, `labelNamesWithMatchers`), the same as
//! [`crate::MemPostings`] gives the head.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::encoding::{Cursor, be32_section, uvarint_section};
use super::{
    ChunkMeta, FORMAT_V2, HEADER_LEN, MAGIC_INDEX, SAMPLE_EVERY, SERIES_ALIGN, TOC_LEN, Toc,
};
use crate::postings::{intersect, intersects, merge, subtract_all};
use crate::{Error, Label, Labels, MatchType, Matcher};

/// One kept postings-offset-table entry: a value and the absolute offset of
/// its entry in the table.
struct SampledEntry {
    value: Box<str>,
    entry: usize,
}

/// The symbol table's location and the offset of every symbol.
///
/// Prometheus keeps every 32nd offset and scans forward from it; decoding a series entry then costs up
/// to 31 varint skips per label, which profiling showed to be most of the cost of selecting series from
/// a block. Four bytes per symbol buys an O(1) lookup: the table is small next to the series section
/// (symbols are shared by many series), and it is scanned once at open anyway to check its order.
struct SymbolTable {
    /// Absolute offset of the first symbol.
    start: usize,
    /// Absolute offset just past the last symbol.
    end: usize,
    count: u32,
    /// Offset of each symbol's length varint, relative to `start`. The section's length is a 32-bit
    /// field, so relative offsets fit in a `u32`.
    offsets: Vec<u32>,
}

/// Reads a Prometheus v2 block index; see the module documentation.
pub struct IndexReader<B: AsRef<[u8]>> {
    bytes: B,
    toc: Toc,
    symbols: SymbolTable,
    /// Label name (including `""` for the all-series list) → sampled entries,
    /// in value order; never empty.
    postings: BTreeMap<Box<str>, Vec<SampledEntry>>,
    /// Absolute end of the postings offset table's entries.
    table_end: usize,
    series_start: u64,
    series_end: u64,
    num_series: u64,
}

impl IndexReader<memmap2::Mmap> {
    /// Maps the index file at `path` and opens it.
    pub fn open(path: &Path) -> Result<IndexReader<memmap2::Mmap>, Error> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        // SAFETY: block files are immutable once written; Ember never
        // modifies or truncates an index file that a reader may map.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io("mmap", path, e))?;
        IndexReader::new(map)
    }
}

fn to_usize(x: u64, what: &str) -> Result<usize, Error> {
    usize::try_from(x).map_err(|_| Error::corrupt(x, format!("{what} offset out of range")))
}

impl<B: AsRef<[u8]>> IndexReader<B> {
    /// Opens an index: checks magic, version 2, the TOC, the symbol table and
    /// the postings offset table (see the module documentation).
    pub fn new(bytes: B) -> Result<IndexReader<B>, Error> {
        let b = bytes.as_ref();
        if b.len() < HEADER_LEN + TOC_LEN {
            return Err(Error::corrupt(
                b.len() as u64,
                format!(
                    "file of {} bytes is shorter than header plus TOC ({} bytes)",
                    b.len(),
                    HEADER_LEN + TOC_LEN
                ),
            ));
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != MAGIC_INDEX {
            return Err(Error::corrupt(0, format!("bad magic {magic:#010x}")));
        }
        if b[4] != FORMAT_V2 {
            return Err(Error::corrupt(
                4,
                format!("unsupported index format version {}", b[4]),
            ));
        }
        let toc_start = b.len() - TOC_LEN;
        let toc = read_toc(b, toc_start)?;

        let symbols = read_symbols(b, toc.symbols)?;
        let mut reader = IndexReader {
            toc,
            symbols,
            postings: BTreeMap::new(),
            table_end: 0,
            series_start: toc.series,
            series_end: toc_start as u64,
            num_series: 0,
            bytes,
        };
        if toc.series != 0 {
            reader.series_end = [
                toc.label_indices,
                toc.label_indices_table,
                toc.postings,
                toc.postings_table,
            ]
            .into_iter()
            .filter(|&o| o >= toc.series)
            .fold(toc_start as u64, u64::min);
        }
        reader.read_postings_table()?;
        let names: Vec<Box<str>> = reader.postings.keys().cloned().collect();
        for name in names {
            if name.is_empty() {
                continue;
            }
            if reader.reverse_lookup(&name)?.is_none() {
                return Err(Error::corrupt(
                    toc.postings_table,
                    format!("label name {name:?} of the postings offset table is not a symbol"),
                ));
            }
        }
        if let Some(off) = reader.postings_offset("", "")? {
            reader.num_series = reader.read_postings(off)?.len() as u64;
        }
        Ok(reader)
    }

    fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// The table of contents.
    pub fn toc(&self) -> Toc {
        self.toc
    }

    /// Number of series (the length of the all-series postings list).
    pub fn num_series(&self) -> u64 {
        self.num_series
    }

    /// All symbols in order.
    pub fn symbols(&self) -> Symbols<'_> {
        let b = self.bytes();
        Symbols {
            cursor: Cursor::new(
                &b[self.symbols.start..self.symbols.end],
                self.symbols.start as u64,
            ),
            left: self.symbols.count,
        }
    }

    /// The symbol with number `id`.
    pub fn lookup_symbol(&self, id: u32) -> Result<&str, Error> {
        if id >= self.symbols.count {
            return Err(Error::corrupt(
                self.symbols.start as u64,
                format!(
                    "symbol reference {id} beyond the {} symbols",
                    self.symbols.count
                ),
            ));
        }
        self.symbol_at(id as usize)
    }

    /// Symbol number `i`, which must be below the symbol count.
    fn symbol_at(&self, i: usize) -> Result<&str, Error> {
        let start = self.symbols.start + self.symbols.offsets[i] as usize;
        Cursor::new(&self.bytes()[start..self.symbols.end], start as u64).uvarint_str("symbol")
    }

    /// The number of symbol `s`, if it is one.
    fn reverse_lookup(&self, s: &str) -> Result<Option<u32>, Error> {
        // The table is strictly increasing (checked at open): a binary search.
        let (mut lo, mut hi) = (0usize, self.symbols.offsets.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.symbol_at(mid)?.cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid as u32)),
            }
        }
        Ok(None)
    }

    fn read_postings_table(&mut self) -> Result<(), Error> {
        if self.toc.postings_table == 0 {
            return Ok(());
        }
        let b = self.bytes.as_ref();
        let mut c = be32_section(b, self.toc.postings_table, "postings offset table")?;
        let count = c.be32("postings offset table entry count")?;
        self.table_end = (c.offset() as usize) + c.remaining();
        let mut prev: Option<(&str, &str)> = None;
        let mut name_values = 0usize;
        let mut pending_last: Option<SampledEntry> = None;
        let toc_start = self.bytes.as_ref().len() - TOC_LEN;
        for _ in 0..count {
            let entry = c.offset() as usize;
            let (name, value, off) = table_entry(&mut c)?;
            if off < HEADER_LEN as u64 || off >= toc_start as u64 {
                return Err(Error::corrupt(
                    entry as u64,
                    format!(
                        "postings list of {name:?}={value:?} at byte {off}, outside the file's sections"
                    ),
                ));
            }
            let new_name = prev.is_none_or(|(n, _)| n != name);
            if let Some(p) = prev
                && (name, value) <= p
            {
                return Err(Error::corrupt(
                    entry as u64,
                    format!(
                        "postings offset table entry {name:?}={value:?} not after {:?}={:?}",
                        p.0, p.1
                    ),
                ));
            }
            if new_name {
                if let (Some((pn, _)), Some(last)) = (prev, pending_last.take()) {
                    self.postings.get_mut(pn).expect("seen").push(last);
                }
                self.postings.insert(name.into(), Vec::new());
                name_values = 0;
            }
            let e = SampledEntry {
                value: value.into(),
                entry,
            };
            if name_values.is_multiple_of(SAMPLE_EVERY) {
                self.postings.get_mut(name).expect("inserted").push(e);
                pending_last = None;
            } else {
                pending_last = Some(e);
            }
            name_values += 1;
            prev = Some((name, value));
        }
        if let (Some((pn, _)), Some(last)) = (prev, pending_last) {
            self.postings.get_mut(pn).expect("seen").push(last);
        }
        if !c.is_empty() {
            return Err(Error::corrupt(
                c.offset(),
                format!(
                    "{} bytes after the {count} entries of the postings offset table",
                    c.remaining()
                ),
            ));
        }
        Ok(())
    }

    /// Calls `f(value, postings offset)` for the values of `name`, in order,
    /// starting at sampled entry `from`, until `f` returns false.
    fn scan_values(
        &self,
        name: &str,
        from: usize,
        mut f: impl FnMut(&str, u64) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let Some(sampled) = self.postings.get(name) else {
            return Ok(());
        };
        let Some(start) = sampled.get(from) else {
            return Ok(());
        };
        let last = &sampled[sampled.len() - 1].value;
        let b = self.bytes();
        let mut c = Cursor::new(&b[start.entry..self.table_end], start.entry as u64);
        while !c.is_empty() {
            let at = c.offset();
            let (n, v, off) = table_entry(&mut c)?;
            if n != name {
                return Err(Error::corrupt(
                    at,
                    format!("expected an entry for label {name:?}, found {n:?}"),
                ));
            }
            if !f(v, off)? || v == &**last {
                break;
            }
        }
        Ok(())
    }

    /// Offset of the postings list of `name="value"`, if present.
    fn postings_offset(&self, name: &str, value: &str) -> Result<Option<u64>, Error> {
        let Some(sampled) = self.postings.get(name) else {
            return Ok(None);
        };
        // The last sampled entry at or below `value` starts the scan.
        let i = sampled.partition_point(|e| &*e.value <= value);
        if i == 0 {
            return Ok(None);
        }
        let mut found = None;
        self.scan_values(name, i - 1, |v, off| {
            if v == value {
                found = Some(off);
            }
            Ok(v < value)
        })?;
        Ok(found)
    }

    /// Reads the postings list at `off`: series references in increasing
    /// order.
    fn read_postings(&self, off: u64) -> Result<Vec<u64>, Error> {
        let mut c = be32_section(self.bytes(), off, "postings list")?;
        let n = c.be32("postings count")? as usize;
        if c.remaining() != n.saturating_mul(4) {
            return Err(Error::corrupt(
                c.offset(),
                format!(
                    "postings list of {n} entries has {} bytes of references",
                    c.remaining()
                ),
            ));
        }
        let mut out = Vec::with_capacity(n);
        let mut prev = None;
        for _ in 0..n {
            let at = c.offset();
            let r = u64::from(c.be32("postings entry")?);
            if prev.is_some_and(|p| r <= p) {
                return Err(Error::corrupt(at, "postings list not strictly increasing"));
            }
            if !self.in_series_section(r) {
                return Err(Error::corrupt(
                    at,
                    format!(
                        "series reference {r} (byte {}) outside the series section [{}, {})",
                        r * SERIES_ALIGN,
                        self.series_start,
                        self.series_end
                    ),
                ));
            }
            prev = Some(r);
            out.push(r);
        }
        Ok(out)
    }

    /// Series references carrying `name="value"`, sorted.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u64>, Error> {
        match self.postings_offset(name, value)? {
            Some(off) => self.read_postings(off),
            None => Ok(Vec::new()),
        }
    }

    /// References of every series, sorted.
    pub fn all_postings(&self) -> Result<Vec<u64>, Error> {
        self.postings("", "")
    }

    /// Postings offsets of the present values `v` of `m.name()` with
    /// `m.matches(v) == want`.
    fn matching_offsets(&self, m: &Matcher, want: bool) -> Result<Vec<u64>, Error> {
        let mut out = Vec::new();
        let name = m.name();
        if !self.postings.contains_key(name) || name.is_empty() {
            return Ok(out);
        }
        let positive = matches!(m.kind(), MatchType::Equal | MatchType::Regex) == want;
        match m.kind() {
            MatchType::Equal | MatchType::NotEqual if positive => {
                out.extend(self.postings_offset(name, m.value())?);
            }
            MatchType::Regex | MatchType::NotRegex if positive && m.set_matches().is_some() => {
                for v in m.set_matches().unwrap_or_default() {
                    out.extend(self.postings_offset(name, v)?);
                }
            }
            MatchType::Regex | MatchType::NotRegex if positive && !m.regex_prefix().is_empty() => {
                // Values with the literal prefix are one contiguous run.
                let prefix = m.regex_prefix();
                let sampled = &self.postings[name];
                let from = sampled
                    .partition_point(|e| &*e.value <= prefix)
                    .saturating_sub(1);
                self.scan_values(name, from, |v, off| {
                    if v.starts_with(prefix) {
                        if m.matches(v) == want {
                            out.push(off);
                        }
                    } else if v > prefix {
                        return Ok(false);
                    }
                    Ok(true)
                })?;
            }
            _ => {
                self.scan_values(name, 0, |v, off| {
                    if m.matches(v) == want {
                        out.push(off);
                    }
                    Ok(true)
                })?;
            }
        }
        Ok(out)
    }

    fn merged_postings(&self, offsets: &[u64]) -> Result<Vec<u64>, Error> {
        let lists = offsets
            .iter()
            .map(|&o| self.read_postings(o))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match lists.len() {
            0 => Vec::new(),
            1 => lists.into_iter().next().unwrap_or_default(),
            _ => merge(&lists.iter().map(Vec::as_slice).collect::<Vec<_>>()),
        })
    }

    /// Series matching all `matchers`, sorted, with Prometheus'
    /// `PostingsForMatchers` semantics: a matcher is evaluated against `""`
    /// for series lacking its label, so `l=""`, `l!="x"`, `l=~".*"`,
    /// `l!~".+"` accept them. Matchers whose label must be present
    /// intersect; the others are subtracted from that intersection, or from
    /// all series when nothing intersects. No matchers select nothing.
    pub fn postings_for_matchers(&self, matchers: &[Matcher]) -> Result<Vec<u64>, Error> {
        if matchers.is_empty() {
            return Ok(Vec::new());
        }
        let must_be_set = |name: &str| {
            matchers
                .iter()
                .any(|m| m.name() == name && !m.matches_empty())
        };
        let mut its: Vec<Vec<u64>> = Vec::new();
        let mut subtract: Vec<Vec<u64>> = Vec::new();
        for m in matchers {
            if !must_be_set(m.name()) || (m.kind().is_negative() && m.matches_empty()) {
                // Accepts series lacking the label: remove those whose
                // present value it rejects.
                let offs = self.matching_offsets(m, false)?;
                if !offs.is_empty() {
                    subtract.push(self.merged_postings(&offs)?);
                }
            } else {
                let offs = self.matching_offsets(m, true)?;
                if offs.is_empty() {
                    return Ok(Vec::new());
                }
                its.push(self.merged_postings(&offs)?);
            }
        }
        let subtract: Vec<&[u64]> = subtract.iter().map(Vec::as_slice).collect();
        if its.is_empty() {
            return Ok(subtract_all(&self.all_postings()?, &subtract));
        }
        let its: Vec<&[u64]> = its.iter().map(Vec::as_slice).collect();
        Ok(subtract_all(&intersect(&its), &subtract))
    }

    /// Values of label `name` carried by series matching all `matchers`,
    /// sorted. Matchers on `name` itself filter the values directly; with no
    /// matchers on other labels that is the answer, as in Prometheus.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, Error> {
        if name.is_empty() {
            return Ok(Vec::new());
        }
        let mut candidates = Vec::new();
        self.scan_values(name, 0, |v, off| {
            if matchers
                .iter()
                .filter(|m| m.name() == name)
                .all(|m| m.matches(v))
            {
                candidates.push((v.to_string(), off));
            }
            Ok(true)
        })?;
        if matchers.iter().all(|m| m.name() == name) {
            return Ok(candidates.into_iter().map(|(v, _)| v).collect());
        }
        let p = self.postings_for_matchers(matchers)?;
        if p.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (v, off) in candidates {
            if intersects(&p, &self.read_postings(off)?) {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Label names carried by at least one series matching all `matchers`,
    /// sorted; no matchers means every name. Like Prometheus, this reads the
    /// selected series' entries.
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, Error> {
        let all = || {
            self.postings
                .keys()
                .filter(|n| !n.is_empty())
                .map(|n| n.to_string())
                .collect()
        };
        if matchers.is_empty() {
            return Ok(all());
        }
        let p = self.postings_for_matchers(matchers)?;
        if p.is_empty() {
            return Ok(Vec::new());
        }
        if p.len() as u64 == self.num_series {
            return Ok(all());
        }
        let mut ids = BTreeSet::new();
        for &r in &p {
            let mut c = self.series_entry(r)?;
            let n = c.uvarint("label count")?;
            for _ in 0..n {
                ids.insert(c.uvarint32("label name reference")?);
                c.uvarint32("label value reference")?;
            }
        }
        let mut names = Vec::with_capacity(ids.len());
        for id in ids {
            names.push(self.name_symbol(id)?.to_string());
        }
        names.sort_unstable();
        Ok(names)
    }

    fn name_symbol(&self, id: u32) -> Result<&str, Error> {
        self.lookup_symbol(id)
    }

    fn in_series_section(&self, series_ref: u64) -> bool {
        series_ref.checked_mul(SERIES_ALIGN).is_some_and(|off| {
            self.toc.series != 0 && off >= self.series_start && off < self.series_end
        })
    }

    /// The content of series `series_ref`'s entry, checksum verified.
    fn series_entry(&self, series_ref: u64) -> Result<Cursor<'_>, Error> {
        if !self.in_series_section(series_ref) {
            // The reference did not come from this file's bytes (postings
            // are checked when read): name the section it missed.
            return Err(Error::corrupt(
                self.series_start,
                format!(
                    "series reference {series_ref} outside the series section [{}, {})",
                    self.series_start, self.series_end
                ),
            ));
        }
        let off = series_ref * SERIES_ALIGN;
        let end = to_usize(self.series_end, "series section end")?;
        uvarint_section(self.bytes(), off, end, "series entry")
    }

    /// The labels of series `series_ref` and its number of chunks, without decoding the chunk
    /// references (listing series needs only these). Checks the entry as [`IndexReader::series`]
    /// does, up to the chunk count.
    pub fn series_labels(&self, series_ref: u64, labels: &mut Labels) -> Result<usize, Error> {
        let mut c = self.series_entry(series_ref)?;
        *labels = self.entry_labels(&mut c)?;
        c.uvarint_usize("chunk count")
    }

    /// The label pairs of series `series_ref` as they are stored (name order), borrowed from the
    /// index into `pairs`, and its number of chunks: lets a caller compare a series with a label
    /// set it holds without building one. Checks the entry's checksum and references as
    /// [`IndexReader::series_labels`] does, but not the label set's validity (sortedness, empty
    /// names): callers needing a [`Labels`] build one and get those checks.
    pub fn series_label_pairs<'a>(
        &'a self,
        series_ref: u64,
        pairs: &mut SeriesPairs<'a>,
    ) -> Result<usize, Error> {
        let mut c = self.series_entry(series_ref)?;
        self.entry_pairs(&mut c, pairs)?;
        c.uvarint_usize("chunk count")
    }

    /// [`IndexReader::series`] with the label pairs borrowed as [`IndexReader::series_label_pairs`]
    /// gives them (and checks them): a caller that finds the series among label sets it already
    /// holds gets its chunk metas without building a label set.
    pub fn series_pairs<'a>(
        &'a self,
        series_ref: u64,
        pairs: &mut SeriesPairs<'a>,
        chunks: &mut Vec<ChunkMeta>,
    ) -> Result<(), Error> {
        chunks.clear();
        let mut c = self.series_entry(series_ref)?;
        self.entry_pairs(&mut c, pairs)?;
        entry_chunks(&mut c, chunks)
    }

    /// The label pairs at the start of a series entry into `sp`; `c` is left at the chunk count.
    fn entry_pairs<'a>(
        &'a self,
        c: &mut Cursor<'_>,
        sp: &mut SeriesPairs<'a>,
    ) -> Result<(), Error> {
        let me = std::ptr::from_ref(self) as usize;
        if sp.reader != me {
            sp.reader = me;
            sp.refs.clear();
            sp.pairs.clear();
        }
        sp.unchanged = 0;
        let n = c.uvarint_usize("label count")?;
        sp.refs.truncate(n);
        sp.pairs.truncate(n);
        sp.pairs
            .reserve(n.min(c.remaining() / 2).saturating_sub(sp.pairs.len()));
        sp.refs
            .reserve(n.min(c.remaining() / 2).saturating_sub(sp.refs.len()));
        let mut same = true;
        for i in 0..n {
            let at = c.offset();
            let name = c.uvarint32("label name reference")?;
            let value = c.uvarint32("label value reference")?;
            // Neighbouring entries share most labels: a reference the previous entry had at this
            // position resolves to the string already looked up.
            let prev = sp.refs.get(i).copied().zip(sp.pairs.get(i).copied());
            same = same && prev.is_some_and(|(r, _)| r == (name, value));
            if same {
                sp.unchanged = i + 1;
            }
            let name_s = match prev {
                Some(((r, _), (s, _))) if r == name => s,
                _ => self
                    .name_symbol(name)
                    .map_err(|e| relocate(e, at, "label name"))?,
            };
            let value_s = match prev {
                Some(((_, r), (_, s))) if r == value => s,
                _ => self
                    .lookup_symbol(value)
                    .map_err(|e| relocate(e, at, "label value"))?,
            };
            if i < sp.pairs.len() {
                sp.refs[i] = (name, value);
                sp.pairs[i] = (name_s, value_s);
            } else {
                sp.refs.push((name, value));
                sp.pairs.push((name_s, value_s));
            }
        }
        Ok(())
    }

    /// The label set at the start of a series entry; `c` is left at the chunk count.
    fn entry_labels(&self, c: &mut Cursor<'_>) -> Result<Labels, Error> {
        let entry_at = c.offset();
        let n = c.uvarint_usize("label count")?;
        // Each label takes at least two bytes; bound the allocation by that.
        let mut ls = Vec::with_capacity(n.min(c.remaining() / 2));
        for _ in 0..n {
            let at = c.offset();
            let name = c.uvarint32("label name reference")?;
            let value = c.uvarint32("label value reference")?;
            let name = self
                .name_symbol(name)
                .map_err(|e| relocate(e, at, "label name"))?;
            let value = self
                .lookup_symbol(value)
                .map_err(|e| relocate(e, at, "label value"))?;
            ls.push(Label::new(name, value));
        }
        Labels::new(ls).map_err(|e| Error::corrupt(entry_at, format!("series labels invalid: {e}")))
    }

    /// Reads series `series_ref` (a postings entry): its label set into
    /// `labels` and its chunk metas into `chunks` (cleared first).
    pub fn series(
        &self,
        series_ref: u64,
        labels: &mut Labels,
        chunks: &mut Vec<ChunkMeta>,
    ) -> Result<(), Error> {
        chunks.clear();
        let mut c = self.series_entry(series_ref)?;
        *labels = self.entry_labels(&mut c)?;
        entry_chunks(&mut c, chunks)
    }
}

/// The label pairs of one series entry of an [`IndexReader`], borrowed from it: filled by
/// [`IndexReader::series_pairs`] and [`IndexReader::series_label_pairs`] and meant to be reused
/// across their calls, since a label whose symbol references equal the previous entry's reuses its
/// strings instead of looking them up again.
#[derive(Default)]
pub struct SeriesPairs<'a> {
    /// The reader the references belong to (its address): another reader's numbers mean other
    /// strings.
    reader: usize,
    refs: Vec<(u32, u32)>,
    pairs: Vec<(&'a str, &'a str)>,
    unchanged: usize,
}

impl<'a> SeriesPairs<'a> {
    /// `(name, value)` pairs in stored order.
    pub fn pairs(&self) -> &[(&'a str, &'a str)] {
        &self.pairs
    }

    /// How many leading pairs are those of the entry read before this one (from the same reader),
    /// so a caller can keep what it derived from them.
    pub fn unchanged(&self) -> usize {
        self.unchanged
    }
}

/// The chunk metas that end a series entry, into `chunks` (cleared first); `c` must be at the chunk
/// count, and nothing may follow the metas.
fn entry_chunks(c: &mut Cursor<'_>, chunks: &mut Vec<ChunkMeta>) -> Result<(), Error> {
    chunks.clear();
    let k = c.uvarint_usize("chunk count")?;
    if k > 0 {
        // Each chunk meta takes at least three bytes.
        chunks.reserve(k.min(c.remaining() / 3 + 1));
        let mint = c.varint("chunk min time")?;
        let maxt = mint.wrapping_add(c.uvarint("chunk max time delta")? as i64);
        let mut r = c.uvarint("chunk reference")? as i64;
        chunks.push(ChunkMeta {
            min_time: mint,
            max_time: maxt,
            chunk_ref: r as u64,
        });
        let mut t0 = maxt;
        for _ in 1..k {
            let mint = t0.wrapping_add(c.uvarint("chunk min time delta")? as i64);
            let maxt = mint.wrapping_add(c.uvarint("chunk max time delta")? as i64);
            r = r.wrapping_add(c.varint("chunk reference delta")?);
            chunks.push(ChunkMeta {
                min_time: mint,
                max_time: maxt,
                chunk_ref: r as u64,
            });
            t0 = maxt;
        }
    }
    if !c.is_empty() {
        return Err(Error::corrupt(
            c.offset(),
            format!(
                "{} unexpected bytes at the end of a series entry",
                c.remaining()
            ),
        ));
    }
    Ok(())
}

/// A symbol lookup error located at the series field that referenced it.
fn relocate(e: Error, at: u64, what: &str) -> Error {
    match e {
        Error::CorruptIndex { reason, .. } => Error::corrupt(at, format!("{what}: {reason}")),
        e => e,
    }
}

fn table_entry<'a>(c: &mut Cursor<'a>) -> Result<(&'a str, &'a str, u64), Error> {
    let at = c.offset();
    let keys = c.uvarint("postings offset table key count")?;
    if keys != 2 {
        return Err(Error::corrupt(
            at,
            format!("postings offset table entry has {keys} keys, expected 2"),
        ));
    }
    let name = c.uvarint_str("label name")?;
    let value = c.uvarint_str("label value")?;
    let off = c.uvarint("postings offset")?;
    Ok((name, value, off))
}

fn read_toc(b: &[u8], toc_start: usize) -> Result<Toc, Error> {
    let raw = &b[toc_start..];
    super::encoding::check_crc(
        &raw[..TOC_LEN - 4],
        toc_start as u64,
        &raw[TOC_LEN - 4..],
        "TOC",
    )?;
    let mut c = Cursor::new(&raw[..TOC_LEN - 4], toc_start as u64);
    let toc = Toc {
        symbols: c.be64("TOC")?,
        series: c.be64("TOC")?,
        label_indices: c.be64("TOC")?,
        label_indices_table: c.be64("TOC")?,
        postings: c.be64("TOC")?,
        postings_table: c.be64("TOC")?,
    };
    for (what, off) in [
        ("symbols", toc.symbols),
        ("series", toc.series),
        ("label indices", toc.label_indices),
        ("label offset table", toc.label_indices_table),
        ("postings", toc.postings),
        ("postings offset table", toc.postings_table),
    ] {
        if off != 0 && (off < HEADER_LEN as u64 || off > toc_start as u64) {
            return Err(Error::corrupt(
                toc_start as u64,
                format!(
                    "TOC points the {what} section at byte {off}, outside [{HEADER_LEN}, {toc_start}]"
                ),
            ));
        }
    }
    Ok(toc)
}

fn read_symbols(b: &[u8], off: u64) -> Result<SymbolTable, Error> {
    if off == 0 {
        return Ok(SymbolTable {
            start: 0,
            end: 0,
            count: 0,
            offsets: Vec::new(),
        });
    }
    let mut c = be32_section(b, off, "symbol table")?;
    let count = c.be32("symbol count")?;
    let start = c.offset() as usize;
    // Each symbol takes at least one byte: bound the allocation by what is there.
    let mut offsets = Vec::with_capacity((count as usize).min(c.remaining()));
    let mut prev: Option<&str> = None;
    for _ in 0..count {
        let at = c.offset();
        offsets.push((at as usize - start) as u32);
        let s = c.uvarint_str("symbol")?;
        if let Some(p) = prev
            && s <= p
        {
            return Err(Error::corrupt(
                at,
                format!("symbol {s:?} not after {p:?}: the table must be strictly increasing"),
            ));
        }
        prev = Some(s);
    }
    if !c.is_empty() {
        return Err(Error::corrupt(
            c.offset(),
            format!("{} bytes after the {count} symbols", c.remaining()),
        ));
    }
    Ok(SymbolTable {
        start,
        end: c.offset() as usize,
        count,
        offsets,
    })
}

/// Iterator over the symbol table, in order.
pub struct Symbols<'a> {
    cursor: Cursor<'a>,
    left: u32,
}

impl<'a> Iterator for Symbols<'a> {
    type Item = Result<&'a str, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.cursor.uvarint_str("symbol");
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}
