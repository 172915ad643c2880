//! The generator as a replayable source: subtask `i` of `p` takes event
//! numbers `n ≡ i (mod p)` of `0..events` (the generator's stride split),
//! and its position is the next event number it would produce.
//!
//! # Position format
//!
//! ```text
//! next event number: u64 little-endian (8 bytes)
//! ```
//! `events` (the end of the range) once the share is exhausted.

use riverbed_compute::source::decode_count;
use riverbed_compute::{Position, Source, SourceReader};

use crate::generator::{Events, Generator};
use crate::model::Event;

/// Events `0..events` of `generator`.
pub struct GeneratorSource {
    pub generator: Generator,
    pub events: u64,
}

impl Source<Event> for GeneratorSource {
    fn reader(
        &self,
        subtask: usize,
        parallelism: usize,
    ) -> riverbed_compute::Result<Box<dyn SourceReader<Event>>> {
        let (i, p) = (subtask as u64, parallelism as u64);
        Ok(Box::new(GeneratorReader {
            share: split(&self.generator, i, p, 0..self.events)?,
            generator: self.generator.clone(),
            subtask: i,
            parallelism: p,
            end: self.events,
        }))
    }
}

fn split(
    generator: &Generator,
    subtask: u64,
    parallelism: u64,
    range: std::ops::Range<u64>,
) -> riverbed_compute::Result<Events> {
    generator
        .split(subtask, parallelism, range)
        .map_err(|e| riverbed_compute::Error::Source(e.to_string()))
}

struct GeneratorReader {
    generator: Generator,
    share: Events,
    subtask: u64,
    parallelism: u64,
    end: u64,
}

impl SourceReader<Event> for GeneratorReader {
    fn read_batch(&mut self, out: &mut Vec<Event>, max: usize) -> riverbed_compute::Result<bool> {
        let before = out.len();
        out.extend(self.share.by_ref().take(max));
        Ok(out.len() > before)
    }

    fn position(&self) -> Position {
        let next = self.share.next_event_number().unwrap_or(self.end);
        Position(next.to_le_bytes().to_vec())
    }

    fn seek(&mut self, position: &Position) -> riverbed_compute::Result<()> {
        let next = decode_count(position)?;
        if next > self.end || (next < self.end && next % self.parallelism != self.subtask) {
            return Err(riverbed_compute::Error::Source(format!(
                "generator position {next} is not one of subtask {} of {} over 0..{}",
                self.subtask, self.parallelism, self.end
            )));
        }
        self.share = split(
            &self.generator,
            self.subtask,
            self.parallelism,
            next..self.end,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GeneratorConfig;

    fn read_all(reader: &mut dyn SourceReader<Event>) -> Vec<Event> {
        let mut out = Vec::new();
        while reader.read_batch(&mut out, 37).unwrap() {}
        out
    }

    #[test]
    fn a_reader_seeked_to_a_position_reads_on_as_the_uninterrupted_one() {
        let source = GeneratorSource {
            generator: Generator::new(GeneratorConfig::default()).unwrap(),
            events: 1_000,
        };
        for subtask in 0..3 {
            let mut whole = source.reader(subtask, 3).unwrap();
            let all = read_all(whole.as_mut());
            assert!(all.iter().all(|e| e.seq() % 3 == subtask as u64));
            let mut first = source.reader(subtask, 3).unwrap();
            let mut head = Vec::new();
            first.read_batch(&mut head, 100).unwrap();
            first.read_batch(&mut head, 11).unwrap();
            let at = first.position();
            let mut resumed = source.reader(subtask, 3).unwrap();
            resumed.seek(&at).unwrap();
            head.extend(read_all(resumed.as_mut()));
            assert_eq!(head, all);
            // The end position replays nothing.
            let end = whole.position();
            let mut after = source.reader(subtask, 3).unwrap();
            after.seek(&end).unwrap();
            assert!(read_all(after.as_mut()).is_empty());
        }
        let mut r = source.reader(1, 3).unwrap();
        assert!(r.seek(&Position(3u64.to_le_bytes().to_vec())).is_err());
        assert!(r.seek(&Position(2_000u64.to_le_bytes().to_vec())).is_err());
        assert!(r.seek(&Position(vec![1, 2])).is_err());
    }
}
