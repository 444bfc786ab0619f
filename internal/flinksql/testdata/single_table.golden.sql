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
  `key_group` ROW<`status` STRING> NOT NULL,
  `query_id` STRING,
  `status` STRING,
  `count` BIGINT,
  `revenue` DECIMAL(38, 16),
  PRIMARY KEY (`key_query_id`, `key_group`) NOT ENFORCED
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
  `grouped`.`grp` AS `key_group`,
  `q` AS `query_id`,
  `grouped`.`grp`.`status` AS `status`,
  `a1` AS `count`,
  CAST(`a2` AS DECIMAL(38, 16)) AS `revenue`
FROM (
  SELECT
    `q`,
    `grp`,
    COUNT(*) AS `a1`,
    SUM(`x2`) AS `a2`
  FROM (
    SELECT
      COALESCE(NULLIF(CAST('q_0123456789abcdef0123' AS STRING), CAST(`orders`.`id` AS STRING)), CAST('q_0123456789abcdef0123' AS STRING)) AS `q`,
      CAST(ROW(`orders`.`status`) AS ROW<`status` STRING>) AS `grp`,
      CAST(`orders`.`total` AS DECIMAL(38, 2)) AS `x2`
    FROM `public.orders` AS `orders`
    WHERE ((`orders`.`total` > CAST(10 AS DECIMAL(2, 0))) AND (CAST(`orders`.`created_at` AS TIMESTAMP(3)) >= CAST('2024-01-01 00:00:00' AS TIMESTAMP(3))))
  ) AS `matched`
  GROUP BY `q`, `grp`
) AS `grouped`;
