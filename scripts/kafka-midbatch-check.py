#!/usr/bin/env python3
"""Checks that a Kafka-protocol broker serves a fetch from inside a record batch, as Kafka does.

A consumer that takes a partition over (rebalance, restart) resumes from the offset its
previous owner committed, usually in the middle of a batch the producer wrote. Kafka answers
with the whole batch and the client skips the records before the offset. A broker that answers
with later batches only makes the rest of that batch unreadable: exposure's ingest would never
see those records (docs/kafka.md, Limits).

    pip install confluent-kafka
    python3 scripts/kafka-midbatch-check.py 127.0.0.1:9092

Creates a one-partition topic `exposure-midbatch-check-<pid>`, writes 1000 records in one
batch, then reads from offsets 0, 1, 500 and 999. Exit 0 if every read gets every record from
its offset on, 1 otherwise.
"""
import os
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

RECORDS = 1000


def main() -> int:
    brokers = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
    topic = f"exposure-midbatch-check-{os.getpid()}"
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 500})
    for i in range(RECORDS):
        producer.produce(topic, value=b"record %d" % i, partition=0)
    producer.flush()
    ok = True
    for start in (0, 1, RECORDS // 2, RECORDS - 1):
        consumer = Consumer(
            {
                "bootstrap.servers": brokers,
                "group.id": f"{topic}-{start}",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(topic, 0, start)])
        got = []
        deadline = time.time() + 10
        while time.time() < deadline and len(got) < RECORDS - start:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                got.append(message.offset())
        consumer.close()
        want = list(range(start, RECORDS))
        verdict = "ok" if got == want else "WRONG"
        ok &= got == want
        first = got[:3]
        print(f"from offset {start}: {len(got)} records (want {len(want)}), first {first}: {verdict}")
    admin.delete_topics([topic])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
