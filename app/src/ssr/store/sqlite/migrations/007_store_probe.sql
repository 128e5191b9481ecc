-- One row the health probe rewrites, to prove a write can commit (lock, disk and file all working).
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
