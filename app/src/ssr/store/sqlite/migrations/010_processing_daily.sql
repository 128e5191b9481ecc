-- The processing rollup by day as well as by hour, so a month of statistics reads about 30 days of
-- buckets rather than 720 hours of them. Filled from the hourly rollup.
CREATE TABLE processing_daily (
    day TEXT NOT NULL,
    status TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    sum_ms INTEGER NOT NULL,
    PRIMARY KEY (day, status, bucket)
) WITHOUT ROWID;
INSERT INTO processing_daily (day, status, bucket, n, sum_ms)
SELECT substr(hour, 1, 10) || 'T00:00:00.000Z', status, bucket, SUM(n), SUM(sum_ms)
FROM processing_rollup GROUP BY 1, 2, 3;
