//! Work split by table: the stable hash that gives each table its slot among N (a Kafka
//! repartition partition, a `replay --shard`), and [`Shard`], the slice of tables one detector
//! owns. The hash is FNV-1a of the table's name, fixed for good: every instance of every
//! release must route a table to the same slot.

use std::fmt;
use std::str::FromStr;

/// The slot of `table` among `slots` (0-based): FNV-1a of its name, modulo `slots`.
pub fn table_slot(table: &str, slots: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in table.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(slots.max(1))) as u32
}

/// Shard `index` of `count` (written `K/N`, 1-based: `1/3`, `2/3`, `3/3`): the tables whose
/// [`table_slot`] among `count` is `index - 1`. A sharded detector still sees every event —
/// each moves time, every table's first read is noted, every permission change is applied —
/// but only its own tables' reads are detected on, and only it raises the alerts of its tables
/// (a grant's alert goes with the object granted on). So N shards' alerts together are the
/// unsharded run's, each alert once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` (1-based) of `count`; `None` unless 1 ≤ index ≤ count.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (1..=count)
            .contains(&index)
            .then_some(Shard { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether `table` is this shard's.
    pub fn owns(self, table: &str) -> bool {
        table_slot(table, self.count) == self.index - 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}`: expected K/N with 1 <= K <= N, such as 2/8");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_belongs_to_exactly_one_shard() {
        for count in [1, 2, 3, 7] {
            for t in 0..500 {
                let table = format!("db.table_{t}");
                let owners = (1..=count)
                    .filter(|&k| Shard::new(k, count).unwrap().owns(&table))
                    .count();
                assert_eq!(owners, 1, "{table} among {count}");
            }
        }
    }

    #[test]
    fn the_slot_is_fixed_for_good() {
        // Routing must never change between releases: Kafka partitions and shards rely on it.
        assert_eq!(table_slot("hr.salaries", 6), 1);
        assert_eq!(table_slot("", 6), (0xcbf2_9ce4_8422_2325u64 % 6) as u32);
    }

    #[test]
    fn shards_are_written_k_of_n() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard::new(2, 8).unwrap()));
        assert_eq!("2/8".parse::<Shard>().unwrap().to_string(), "2/8");
        for bad in ["0/3", "4/3", "1", "a/3", "1/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
