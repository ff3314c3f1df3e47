-- Sample data for the demo: 200,000 orders of 1,000 customers.
DROP TABLE IF EXISTS orders;
CREATE TABLE orders (
  id       bigint PRIMARY KEY,
  customer int NOT NULL,
  amount   numeric(10, 2) NOT NULL,
  placed   timestamptz NOT NULL,
  note     text
);
INSERT INTO orders
SELECT g, 1 + g % 1000, round((g * 7919 % 100000) / 100.0, 2),
       timestamptz '2026-01-01' + g * interval '1 minute',
       CASE WHEN g % 10 = 0 THEN NULL ELSE 'order #' || g END
FROM generate_series(1, 200000) g;
ANALYZE orders;

-- For the dashboard: invoices and support tickets of the same customers.
DROP TABLE IF EXISTS invoices;
CREATE TABLE invoices (
  id       bigint PRIMARY KEY,
  customer int NOT NULL,
  total    numeric(10, 2) NOT NULL,
  due      date NOT NULL,
  paid     bool NOT NULL
);
INSERT INTO invoices
SELECT g, 1 + g % 1000, round((g::bigint * 104729 % 500000) / 100.0, 2),
       date '2026-01-01' + (g % 330), g % 3 <> 0
FROM generate_series(1, 50000) g;
DROP TABLE IF EXISTS tickets;
CREATE TABLE tickets (
  id       bigint PRIMARY KEY,
  customer int NOT NULL,
  subject  text NOT NULL,
  open     bool NOT NULL
);
INSERT INTO tickets
SELECT g, 1 + g % 1000, 'ticket ' || g, g % 5 = 0
FROM generate_series(1, 20000) g;
ANALYZE invoices;
ANALYZE tickets;

-- examples/worker.c: jobs to do, and what the worker made of them.
DROP TABLE IF EXISTS results;
DROP TABLE IF EXISTS jobs;
CREATE TABLE jobs (id bigserial PRIMARY KEY, payload text, done bool NOT NULL DEFAULT false);
CREATE TABLE results (job_id bigint PRIMARY KEY REFERENCES jobs, len bigint NOT NULL);
