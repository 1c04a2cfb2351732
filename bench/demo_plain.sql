-- The demo pipeline (examples/demo/pipeline.toml) as plain DuckDB SQL, without checkpoints:
-- what a user would run instead of respawn. Each stage becomes a table, each output a COPY.
-- Sources become views, so the generated orders are never stored whole (respawn materializes
-- and checkpoints a sql source like a stage): the strongest plain baseline, not the most
-- similar one. Outputs go to out/ under the current directory (create it first).
-- Run: build/bench/plain_duckdb --threads 2 bench/demo_plain.sql (bench/pipeline_bench.sh does).
-- Keep it in step with examples/demo/pipeline.toml (same SQL, same parameters).

CREATE VIEW customers AS
SELECT i::INTEGER AS customer_id,
       'customer_' || i AS customer_name,
       (['north', 'south', 'east', 'west', 'central', 'islands', 'mountain', 'coast'])
           [1 + (hash(i, 'region') % 8)::INTEGER] AS region,
       (['consumer', 'small_business', 'enterprise'])[1 + (hash(i, 'segment') % 3)::INTEGER] AS segment,
       DATE '2020-01-01' + (hash(i, 'signup') % 1461)::INTEGER AS signup_date
FROM range(1000000) t(i);

CREATE VIEW products AS
SELECT i::INTEGER AS product_id,
       'product_' || i AS product_name,
       (['books', 'music', 'games', 'garden', 'kitchen', 'toys', 'sports', 'beauty', 'tools',
         'office', 'pets', 'baby'])[1 + (hash(i, 'category') % 12)::INTEGER] AS category,
       ((100 + hash(i, 'price') % 20000)::BIGINT * 0.01)::DECIMAL(10, 2) AS unit_price
FROM range(50000) t(i);

CREATE VIEW orders AS
SELECT order_id,
       i::BIGINT AS ingest_seq,
       (hash(order_id * 8 + 1) % 1000000)::INTEGER AS customer_id,
       (hash(order_id * 8 + 2) % 50000)::INTEGER AS product_id,
       (hash(order_id * 8 + 3) % 7)::INTEGER - 1 AS quantity,
       make_timestamp(1704067200000000 + (hash(order_id * 8 + 4) % 31622400)::BIGINT * 1000000) AS order_ts,
       CASE hash(order_id * 8 + 5) % 20 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'returned' ELSE 'complete' END AS status,
       CASE hash(order_id * 8 + 6) % 10 WHEN 0 THEN ' save10 ' WHEN 1 THEN 'Save20' END AS coupon
FROM (SELECT i, (i - CASE WHEN i % 40 = 39 THEN 1 ELSE 0 END)::BIGINT AS order_id FROM range(20000000) t(i));

CREATE TABLE clean_orders AS
SELECT order_id, customer_id, product_id, quantity, CAST(order_ts AS DATE) AS order_date,
       CASE upper(trim(coupon)) WHEN 'SAVE10' THEN 0.10 WHEN 'SAVE20' THEN 0.20 ELSE 0 END::DECIMAL(4, 2) AS discount
FROM orders
WHERE status = 'complete' AND quantity > 0
QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY ingest_seq DESC) = 1;

CREATE TABLE enriched_orders AS
SELECT o.order_id, o.customer_id, o.product_id, o.order_date, c.region, p.category,
       o.quantity, CAST(o.quantity * p.unit_price * (1 - o.discount) AS DECIMAL(18, 2)) AS revenue
FROM clean_orders o
JOIN customers c USING (customer_id)
JOIN products p USING (product_id);

-- Free memory once nothing reads the table any more.
DROP TABLE clean_orders;

CREATE TABLE daily_revenue AS
SELECT order_date, region, count(*) AS orders, sum(quantity) AS units, sum(revenue) AS revenue,
       count(DISTINCT customer_id) AS customers
FROM enriched_orders
GROUP BY order_date, region
ORDER BY order_date, region;

CREATE TABLE customer_stats AS
SELECT customer_id, count(*) AS orders, sum(revenue) AS revenue,
       min(order_date) AS first_order, max(order_date) AS last_order,
       count(DISTINCT product_id) AS distinct_products
FROM enriched_orders
GROUP BY customer_id;

CREATE TABLE top_customers AS
SELECT region, rank, customer_id, customer_name, segment, orders, revenue, first_order, last_order
FROM (SELECT c.region, c.customer_id, c.customer_name, c.segment, s.orders, s.revenue,
             s.first_order, s.last_order,
             row_number() OVER (PARTITION BY c.region ORDER BY s.revenue DESC, s.customer_id) AS rank
      FROM customer_stats s JOIN customers c USING (customer_id))
WHERE rank <= 100
ORDER BY region, rank;

CREATE TABLE region_category AS
SELECT region, category, date_trunc('month', order_date) AS month, count(*) AS orders,
       sum(revenue) AS revenue, count(DISTINCT customer_id) AS customers,
       median(revenue) AS median_order
FROM enriched_orders
GROUP BY region, category, month
ORDER BY region, category, month;

CREATE TABLE cohorts AS
SELECT date_trunc('month', s.first_order) AS cohort, date_trunc('month', e.order_date) AS month,
       count(DISTINCT e.customer_id) AS active_customers, sum(e.revenue) AS revenue
FROM enriched_orders e JOIN customer_stats s USING (customer_id)
GROUP BY cohort, month
ORDER BY cohort, month;

COPY daily_revenue TO 'out/daily_revenue.parquet' (FORMAT parquet, COMPRESSION zstd);
COPY top_customers TO 'out/top_customers.csv' (FORMAT csv, HEADER);
COPY region_category TO 'out/region_category.csv' (FORMAT csv, HEADER);
COPY cohorts TO 'out/cohorts.parquet' (FORMAT parquet, COMPRESSION zstd);
