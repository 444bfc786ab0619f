SET 'pipeline.name' = 'cdcq-env1-q_0123456789abcdef0123';

SET 'table.exec.source.cdc-events-duplicate' = 'true';

SET 'table.local-time-zone' = 'UTC';

CREATE TEMPORARY TABLE `public.orders` (
  `id` INT,
  `customer_id` INT,
  `status` STRING,
  `total` DECIMAL(10, 2),
  `created_at` TIMESTAMP_LTZ(3),
  PRIMARY KEY (`id`) NOT ENFORCED
) WITH (
  'connector' = 'kafka',
  'topic-pattern' = 'env1\.public\.orders',
  'scan.topic-partition-discovery.interval' = '30 s',
  'properties.bootstrap.servers' = 'kafka:19092',
  'properties.group.id' = 'cdcq-env1-q_0123456789abcdef0123',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'debezium-json',
  'debezium-json.schema-include' = 'false',
  'debezium-json.ignore-parse-errors' = 'false',
  'debezium-json.timestamp-format.standard' = 'ISO-8601'
);

CREATE TEMPORARY TABLE `cdcq_result` (
  `key_query_id` STRING NOT NULL,
  `query_id` STRING,
  `customers` BIGINT,
  `orders` BIGINT,
  `per_order` DECIMAL(38, 16),
  PRIMARY KEY (`key_query_id`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'env1',
  'properties.bootstrap.servers' = 'kafka:19092',
  'key.format' = 'json',
  'key.fields-prefix' = 'key_',
  'key.json.timestamp-format.standard' = 'ISO-8601',
  'key.json.encode.decimal-as-plain-number' = 'true',
  'value.format' = 'json',
  'value.json.timestamp-format.standard' = 'ISO-8601',
  'value.json.encode.decimal-as-plain-number' = 'true',
  'value.fields-include' = 'EXCEPT_KEY'
);

INSERT INTO `cdcq_result`
SELECT
  `q` AS `key_query_id`,
  `q` AS `query_id`,
  `a1` AS `customers`,
  `a2` AS `orders`,
  CAST((`a3` / CAST(`a2` AS DECIMAL(19, 0))) AS DECIMAL(38, 16)) AS `per_order`
FROM (
  SELECT
    `q`,
    COUNT(DISTINCT `x1`) AS `a1`,
    COUNT(`m`) AS `a2`,
    SUM(`x3`) AS `a3`
  FROM (
    SELECT
      COALESCE(NULLIF(CAST('q_0123456789abcdef0123' AS STRING), CAST(`orders`.`id` AS STRING)), CAST('q_0123456789abcdef0123' AS STRING)) AS `q`,
      1 AS `m`,
      `orders`.`customer_id` AS `x1`,
      CAST(`orders`.`total` AS DECIMAL(38, 2)) AS `x3`
    FROM `public.orders` AS `orders`
    WHERE (`orders`.`status` IN ('paid', 'shipped'))
    UNION ALL
    SELECT
      CAST('q_0123456789abcdef0123' AS STRING) AS `q`,
      CAST(NULL AS INT) AS `m`,
      CAST(NULL AS INT) AS `x1`,
      CAST(NULL AS DECIMAL(38, 2)) AS `x3`
  ) AS `matched`
  GROUP BY `q`
) AS `grouped`;
