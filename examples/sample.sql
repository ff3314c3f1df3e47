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
