SET 'pipeline.name' = 'cdcq-env1-q_0123456789abcdef0123';

SET 'table.exec.source.cdc-events-duplicate' = 'true';

SET 'table.local-time-zone' = 'UTC';

CREATE TEMPORARY TABLE `public.customers` (
  `id` INT,
  `name` STRING,
  `region` STRING,
  PRIMARY KEY (`id`) NOT ENFORCED
) WITH (
  'connector' = 'kafka',
  'topic-pattern' = 'env1\.public\.customers',
  'scan.topic-partition-discovery.interval' = '30 s',
  'properties.bootstrap.servers' = 'kafka:19092',
  'properties.group.id' = 'cdcq-env1-q_0123456789abcdef0123',
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'debezium-json',
  'debezium-json.schema-include' = 'false',
  'debezium-json.ignore-parse-errors' = 'false',
  'debezium-json.timestamp-format.standard' = 'ISO-8601'
);

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
  `query_id` STRING NOT NULL,
  `_group_1` INT NOT NULL,
  `name` STRING NOT NULL,
  `orders` BIGINT,
  `average` DECIMAL(38, 16),
  PRIMARY KEY (`query_id`, `_group_1`, `name`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'env1',
  'properties.bootstrap.servers' = 'kafka:19092',
  'key.format' = 'json',
  'key.json.timestamp-format.standard' = 'ISO-8601',
  'key.json.encode.decimal-as-plain-number' = 'true',
  'value.format' = 'json',
  'value.json.timestamp-format.standard' = 'ISO-8601',
  'value.json.encode.decimal-as-plain-number' = 'true',
  'value.fields-include' = 'ALL'
);

INSERT INTO `cdcq_result`
SELECT
  CAST('q_0123456789abcdef0123' AS STRING) AS `query_id`,
  `g1` AS `_group_1`,
  `g2` AS `name`,
  `a1` AS `orders`,
  CAST(`a2` AS DECIMAL(38, 16)) AS `average`
FROM (
  SELECT
    `g1`,
    `g2`,
    COUNT(*) AS `a1`,
    AVG(`x2`) AS `a2`
  FROM (
    SELECT
      `c`.`id` AS `g1`,
      `c`.`name` AS `g2`,
      CAST(`o`.`total` AS DECIMAL(38, 16)) AS `x2`
    FROM `public.orders` AS `o`
    JOIN `public.customers` AS `c` ON `o`.`customer_id` = `c`.`id`
    WHERE (`c`.`region` = 'EU')
  ) AS `matched`
  GROUP BY `g1`, `g2`
) AS `grouped`;
