import RelayKafka
import RelayRuntime
import Testing

@Suite("OffsetTracker: commit only up to the oldest unfinished record")
struct OffsetTrackerTests {
    let tp = TopicPartition("t", 0)

    func records(_ offsets: [Int64], generation: UInt64 = 1, partition: Int32 = 0) -> [KafkaRecord] {
        offsets.map { KafkaRecord(topic: "t", partition: partition, offset: $0, key: nil, value: [], timestamp: 0,
                                  headers: [], generation: generation) }
    }

    @Test func outOfOrderCompletionHoldsTheCommitPoint() {
        let tracker = OffsetTracker()
        tracker.assign([tp], generation: 1)
        let batch = tracker.track(records([10, 11, 12, 13]))
        #expect(batch.count == 4)
        #expect(tracker.pendingCommits() == [tp: 10])
        tracker.complete(batch[1])
        tracker.complete(batch[2])
        #expect(tracker.pendingCommits() == [tp: 10], "11 and 12 are done but 10 is not")
        tracker.complete(batch[0])
        #expect(tracker.pendingCommits() == [tp: 13])
        tracker.complete(batch[3])
        #expect(tracker.pendingCommits() == [tp: 14])
        tracker.markCommitted([tp: 14])
        #expect(tracker.pendingCommits().isEmpty)
    }

    @Test func ownershipIsTheCurrentAssignmentsGeneration() {
        let tracker = OffsetTracker()
        #expect(!tracker.owns(tp, generation: 1), "never assigned")
        tracker.assign([tp], generation: 1)
        #expect(tracker.owns(tp, generation: 1))
        _ = tracker.revoke([tp])
        #expect(!tracker.owns(tp, generation: 1), "revoked")
        tracker.assign([tp], generation: 3)
        #expect(!tracker.owns(tp, generation: 1), "work of the earlier assignment stays stale when the partition returns")
        #expect(tracker.owns(tp, generation: 3))
        #expect(!tracker.owns(TopicPartition("t", 1), generation: 3), "another partition")
    }

    @Test func gapsInOffsetsAreFine() {
        let tracker = OffsetTracker()
        tracker.assign([tp], generation: 1)
        let batch = tracker.track(records([5, 9, 20]))
        tracker.complete(batch[0])
        #expect(tracker.pendingCommits() == [tp: 9])
        tracker.complete(batch[2])
        tracker.complete(batch[1])
        #expect(tracker.pendingCommits() == [tp: 21])
    }

    @Test func recordsOfARevokedAssignmentAreIgnored() {
        let tracker = OffsetTracker()
        tracker.assign([tp], generation: 1)
        let old = tracker.track(records([0, 1]))
        tracker.complete(old[0])
        #expect(tracker.revoke([tp]) == [tp: 1])
        tracker.assign([tp], generation: 2)
        #expect(tracker.track(records([2], generation: 1)).isEmpty, "stale generation is dropped")
        tracker.complete(old[1])  // finishing late must not move the new assignment's commit point
        #expect(tracker.pendingCommits().isEmpty)
        let fresh = tracker.track(records([1, 2], generation: 2))
        #expect(fresh.count == 2)
        tracker.complete(fresh[0])
        #expect(tracker.pendingCommits() == [tp: 2])
    }

    @Test func unassignedPartitionsAreNotTracked() {
        let tracker = OffsetTracker()
        #expect(tracker.track(records([0])).isEmpty)
    }

    @Test func manyRecordsCompactAndStayCorrect() {
        let tracker = OffsetTracker()
        tracker.assign([tp], generation: 1)
        let batch = tracker.track(records(Array(0..<10_000)))
        for record in batch.dropLast() { tracker.complete(record) }
        #expect(tracker.pendingCommits() == [tp: 9_999])
        #expect(tracker.pendingCount == 1)
        tracker.complete(batch.last!)
        #expect(tracker.pendingCommits() == [tp: 10_000])
    }
}
