//! Sources whose records are computed from (partition, offset): the shared
//! `open` bounds checks and the reader that fills batches from a plan.
//!
//! The workload generator and the Nexmark generator both work this way, so
//! any offset opens in O(1).

use std::ops::Range;
use std::sync::Arc;

use crate::record::{Decoded, Offset, PartitionId, ReadStatus};
use crate::source::{PartitionReader, SourceError};

/// A plan that computes each record of each partition on demand.
pub(crate) trait Computed: Send + Sync + 'static {
    /// How many partitions there are.
    fn partition_count(&self) -> u32;
    /// How many records `partition` holds (`None` if it does not exist).
    fn len(&self, partition: PartitionId) -> Option<u64>;
    /// Appends the records at `offsets` of `partition` (within its length).
    fn fill(&self, partition: PartitionId, offsets: Range<Offset>, out: &mut Vec<Decoded>);
}

/// Opens `partition` of `plan` at `from`, checking both.
pub(crate) fn open<C: Computed>(
    plan: &Arc<C>,
    partition: PartitionId,
    from: Offset,
) -> Result<Box<dyn PartitionReader>, SourceError> {
    let end = plan.len(partition).ok_or(SourceError::UnknownPartition {
        partition,
        count: plan.partition_count(),
    })?;
    if from > end {
        return Err(SourceError::OffsetOutOfRange {
            partition,
            offset: from,
            end,
        });
    }
    Ok(Box::new(ComputedReader {
        plan: Arc::clone(plan),
        partition,
        next: from,
        end,
    }))
}

struct ComputedReader<C> {
    plan: Arc<C>,
    partition: PartitionId,
    next: Offset,
    end: Offset,
}

impl<C: Computed> PartitionReader for ComputedReader<C> {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError> {
        if max == 0 {
            return Ok(ReadStatus::More);
        }
        let stop = self.end.min(self.next.saturating_add(max as u64));
        self.plan.fill(self.partition, self.next..stop, out);
        self.next = stop;
        Ok(if self.next >= self.end {
            ReadStatus::End
        } else {
            ReadStatus::More
        })
    }

    fn position(&self) -> Offset {
        self.next
    }
}
