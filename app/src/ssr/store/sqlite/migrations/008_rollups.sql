-- Counters kept in the transaction of every change they count, so statistics and the overview read
-- O(hours × buckets) rows instead of every event and video. Filled here from what is stored.

-- Webhook calls per hour (its start, as stored timestamps are written), endpoint and 2xx-or-not.
CREATE TABLE event_rollup (
    hour TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (hour, endpoint, accepted)
) WITHOUT ROWID;
INSERT INTO event_rollup (hour, endpoint, accepted, n)
SELECT substr(created_at, 1, 13) || ':00:00.000Z', endpoint, status_code BETWEEN 200 AND 299, COUNT(*)
FROM webhook_events GROUP BY 1, 2, 3;

-- Videos per status.
CREATE TABLE video_counts (
    status TEXT PRIMARY KEY,
    n INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO video_counts (status, n) SELECT status, COUNT(*) FROM aivideos GROUP BY status;

-- Finished videos per hour they finished in, status and processing-time bucket (the same buckets as
-- `model::stats::processing_bucket`), with the sum of their times for the average.
CREATE TABLE processing_rollup (
    hour TEXT NOT NULL,
    status TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    sum_ms INTEGER NOT NULL,
    PRIMARY KEY (hour, status, bucket)
) WITHOUT ROWID;
INSERT INTO processing_rollup (hour, status, bucket, n, sum_ms)
SELECT substr(fin, 1, 13) || ':00:00.000Z', status,
       CASE
           WHEN ms < 1000 THEN ms / 10
           WHEN ms < 10000 THEN 100 + (ms - 1000) / 100
           WHEN ms < 60000 THEN 190 + (ms - 10000) / 1000
           WHEN ms < 600000 THEN 240 + (ms - 60000) / 10000
           WHEN ms < 7200000 THEN 294 + (ms - 600000) / 60000
           WHEN ms < 86400000 THEN 404 + (ms - 7200000) / 600000
           ELSE 536
       END,
       COUNT(*), SUM(ms)
FROM (
    SELECT status, fin, MAX(0, CAST(ROUND((julianday(fin) - julianday(queued)) * 86400000) AS INTEGER)) AS ms
    FROM (
        SELECT status, json_extract(metadata, '$.queuedAt') AS queued,
               CASE status WHEN 'completed' THEN json_extract(metadata, '$.completedAt')
                           ELSE json_extract(metadata, '$.failedAt') END AS fin
        FROM aivideos WHERE status IN ('completed', 'failed')
    )
    WHERE queued IS NOT NULL AND fin IS NOT NULL
)
GROUP BY 1, 2, 3;
