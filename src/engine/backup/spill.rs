//! Lists longer than a backup should hold in memory — the files of a table of a million
//! files — kept in memory up to a bound and beyond it written to unnamed temporary files
//! (under `TMPDIR`, gone when closed, even when the run is killed), then read back in the
//! order they were pushed, or merged in sorted order.

use std::cmp::Ordering;
use std::io::{BufReader, BufWriter, Seek as _, SeekFrom, Write as _};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A list of `T` that spills to temporary files beyond `limit` items held. Each spill is a
/// run of the items pushed since the last, sorted first when the list is [`Spill::sorted`].
pub(super) struct Spill<T> {
    held: Vec<T>,
    runs: Vec<std::fs::File>,
    limit: usize,
    order: Option<fn(&T, &T) -> Ordering>,
}

impl<T: Serialize + DeserializeOwned> Spill<T> {
    /// A list read back in the order items were pushed.
    pub(super) fn in_order(limit: usize) -> Self {
        Self {
            held: Vec::new(),
            runs: Vec::new(),
            limit: limit.max(1),
            order: None,
        }
    }

    /// A list read back sorted by `order` (items that compare equal in any order).
    pub(super) fn sorted(limit: usize, order: fn(&T, &T) -> Ordering) -> Self {
        Self {
            order: Some(order),
            ..Self::in_order(limit)
        }
    }

    pub(super) fn push(&mut self, item: T) -> std::io::Result<()> {
        self.held.push(item);
        if self.held.len() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes what is held as one run. The writes go to a local temporary file, in large
    /// buffered pieces: short enough not to need the blocking pool.
    fn spill(&mut self) -> std::io::Result<()> {
        if let Some(order) = self.order {
            self.held.sort_by(order);
        }
        let mut out = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for item in self.held.drain(..) {
            serde_json::to_writer(&mut out, &item)?;
            out.write_all(b"\n")?;
        }
        let mut file = out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        Ok(())
    }

    /// Every item: in the order pushed, or for a sorted list in sorted order.
    pub(super) fn into_iter(mut self) -> impl Iterator<Item = std::io::Result<T>> {
        let mut sources: Vec<Source<T>> = self.runs.drain(..).map(Source::run).collect();
        if let Some(order) = self.order {
            self.held.sort_by(order);
        }
        sources.push(Source::Held(std::mem::take(&mut self.held).into_iter()));
        let order = self.order;
        let mut heads: Vec<Option<std::io::Result<T>>> =
            sources.iter_mut().map(Iterator::next).collect();
        std::iter::from_fn(move || {
            // The source whose head comes first: the first one left when read in order, else
            // the least (a few dozen runs at most: a scan is enough).
            let mut pick: Option<usize> = None;
            for (i, head) in heads.iter().enumerate() {
                let Some(head) = head else { continue };
                let better = match (pick, order, head) {
                    (Some(_), None, _) => false,
                    (None, _, _) | (Some(_), Some(_), Err(_)) => true,
                    (Some(p), Some(order), Ok(item)) => match &heads[p] {
                        Some(Ok(current)) => order(item, current) == Ordering::Less,
                        _ => false,
                    },
                };
                if better {
                    pick = Some(i);
                }
            }
            let i = pick?;
            let next = sources[i].next();
            std::mem::replace(&mut heads[i], next)
        })
    }
}

/// Where [`Spill::into_iter`] reads items from.
enum Source<T> {
    Run(
        serde_json::StreamDeserializer<
            'static,
            serde_json::de::IoRead<BufReader<std::fs::File>>,
            T,
        >,
    ),
    Held(std::vec::IntoIter<T>),
}

impl<T: DeserializeOwned> Source<T> {
    fn run(file: std::fs::File) -> Self {
        let reader = BufReader::with_capacity(1 << 16, file);
        Self::Run(serde_json::Deserializer::from_reader(reader).into_iter())
    }
}

impl<T: DeserializeOwned> Iterator for Source<T> {
    type Item = std::io::Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Run(items) => items.next().map(|r| r.map_err(std::io::Error::from)),
            Self::Held(items) => items.next().map(Ok),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect<T: Serialize + DeserializeOwned>(spill: Spill<T>) -> Vec<T> {
        spill.into_iter().collect::<std::io::Result<_>>().unwrap()
    }

    #[test]
    fn items_come_back_in_the_order_pushed_across_spills() {
        let mut spill = Spill::in_order(3);
        for i in 0..10_u32 {
            spill.push(i * 7 % 10).unwrap();
        }
        assert_eq!(spill.runs.len(), 3, "nine items spilled in three runs");
        assert_eq!(collect(spill), vec![0, 7, 4, 1, 8, 5, 2, 9, 6, 3]);
    }

    #[test]
    fn a_sorted_list_merges_its_runs() {
        let mut spill = Spill::sorted(4, |a: &String, b: &String| a.cmp(b));
        let words = [
            "pear", "fig", "apple", "kiwi", "date", "plum", "lime", "fig", "nut",
        ];
        for w in words {
            spill.push(w.to_owned()).unwrap();
        }
        let mut expected: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        expected.sort();
        assert_eq!(collect(spill), expected);
    }

    #[test]
    fn a_list_that_never_spills_writes_nothing() {
        let mut spill = Spill::sorted(100, |a: &u32, b: &u32| a.cmp(b));
        for i in [3, 1, 2] {
            spill.push(i).unwrap();
        }
        assert!(spill.runs.is_empty());
        assert_eq!(collect(spill), vec![1, 2, 3]);
    }
}
