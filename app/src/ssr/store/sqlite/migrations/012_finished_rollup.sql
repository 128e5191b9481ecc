-- Final videos per hour (and day) they finished in, workspace, status and failure reason: the
-- Overview's failure reasons and per-workspace success rates read these, O(hours × reasons), kept in
-- the transaction of every change (`bump_videos`). The reason is `model::dashboard::failure_reason`:
-- the error trimmed of spaces, tabs and line breaks, at most 200 characters; empty for `completed`.
CREATE TABLE finished_rollup (
    hour TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (hour, status, reason, workspace_id)
) WITHOUT ROWID;
CREATE TABLE finished_daily (
    day TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (day, status, reason, workspace_id)
) WITHOUT ROWID;
INSERT INTO finished_rollup (hour, workspace_id, status, reason, n)
SELECT substr(fin, 1, 13) || ':00:00.000Z', workspace_id, status, reason, COUNT(*)
FROM (
    SELECT workspace_id, status,
           CASE status WHEN 'completed' THEN json_extract(metadata, '$.completedAt')
                       ELSE json_extract(metadata, '$.failedAt') END AS fin,
           CASE status WHEN 'completed' THEN ''
                       ELSE substr(trim(COALESCE(error, ''), ' ' || char(9, 10, 13)), 1, 200) END AS reason
    FROM aivideos WHERE status IN ('completed', 'failed')
)
WHERE fin IS NOT NULL
GROUP BY 1, 2, 3, 4;
INSERT INTO finished_daily (day, workspace_id, status, reason, n)
SELECT substr(hour, 1, 10) || 'T00:00:00.000Z', workspace_id, status, reason, SUM(n)
FROM finished_rollup GROUP BY 1, 2, 3, 4;
