-- The demo tables (retail.orders_info of the Kafka Connect → ADX demo, bank.holding of the per-field history demo) (loaded by the postgres container on first start).
CREATE SCHEMA IF NOT EXISTS retail;
CREATE TABLE IF NOT EXISTS retail.orders_info (
    orderid SERIAL NOT NULL PRIMARY KEY,
    custid INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    city VARCHAR(255) NOT NULL,
    purchase_time VARCHAR(20) NOT NULL
);

CREATE SCHEMA IF NOT EXISTS bank;
CREATE TABLE IF NOT EXISTS bank.holding (
    holding_id int,
    user_id int,
    holding_stock varchar(8),
    holding_quantity int,
    datetime_created timestamp,
    datetime_updated timestamp,
    primary key (holding_id)
);
-- Full before-images, so the change history knows every old value.
ALTER TABLE bank.holding REPLICA IDENTITY FULL;

-- The reader connects as this role: logical replication plus read access to the captured tables.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdc_reader') THEN
    CREATE ROLE cdc_reader WITH LOGIN REPLICATION PASSWORD 'cdc_reader_local_only';
  END IF;
END $$;
GRANT USAGE ON SCHEMA retail, bank TO cdc_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA retail, bank TO cdc_reader;
GRANT CREATE ON DATABASE postgres TO cdc_reader; -- to create the publication on first start
ALTER TABLE retail.orders_info OWNER TO cdc_reader;
ALTER TABLE bank.holding OWNER TO cdc_reader;
