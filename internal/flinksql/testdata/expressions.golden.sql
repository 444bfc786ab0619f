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
  `key_group` ROW<`size` STRING, `month` TIMESTAMP(6)> NOT NULL,
  `query_id` STRING,
  `size` STRING,
  `month` TIMESTAMP(6),
  `doubled` DECIMAL(38, 16),
  `greatest` DECIMAL(38, 16),
  `avg_id` DECIMAL(38, 16),
  `valid` BIGINT,
  `label` STRING,
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
  `grouped`.`grp`.`size` AS `size`,
  `grouped`.`grp`.`month` AS `month`,
  CAST(`a1` AS DECIMAL(38, 16)) AS `doubled`,
  CAST(GREATEST(COALESCE(`a2`, CAST(0 AS DECIMAL(1, 0))), COALESCE(CAST(0 AS DECIMAL(1, 0)), `a2`)) AS DECIMAL(38, 16)) AS `greatest`,
  CAST(ROUND(`a3`, 2) AS DECIMAL(38, 16)) AS `avg_id`,
  `a4` AS `valid`,
  CAST((`grouped`.`grp`.`size` || '-orders') AS STRING) AS `label`
FROM (
  SELECT
    `q`,
    `grp`,
    SUM(`x1`) AS `a1`,
    MIN(`x2`) AS `a2`,
    AVG(`x3`) AS `a3`,
    COUNT(`x4`) AS `a4`
  FROM (
    SELECT
      COALESCE(NULLIF(CAST('q_0123456789abcdef0123' AS STRING), CAST(`o`.`id` AS STRING)), CAST('q_0123456789abcdef0123' AS STRING)) AS `q`,
      CAST(ROW(CASE WHEN (`o`.`total` >= CAST(100 AS DECIMAL(3, 0))) THEN CAST('big' AS STRING) ELSE CAST('small' AS STRING) END, CAST(FLOOR(CAST(`o`.`created_at` AS TIMESTAMP(3)) TO MONTH) AS TIMESTAMP(6))) AS ROW<`size` STRING, `month` TIMESTAMP(6)>) AS `grp`,
      CAST((`o`.`total` * CAST(2 AS DECIMAL(1, 0))) AS DECIMAL(38, 16)) AS `x1`,
      `o`.`total` AS `x2`,
      CAST(`p`.`id` AS DECIMAL(38, 16)) AS `x3`,
      NULLIF(`p`.`status`, CAST('void' AS STRING)) AS `x4`
    FROM `public.orders` AS `o`
    JOIN `public.orders` AS `p` ON `o`.`customer_id` = `p`.`customer_id`
    WHERE (((LOWER(`o`.`status`) LIKE LOWER('pa%') ESCAPE '!') AND (CAST(CAST(`o`.`created_at` AS TIMESTAMP(3)) AS TIMESTAMP(6)) > (CAST(DATE '2024-01-01' AS TIMESTAMP(6)) + INTERVAL '1 00:00:00.000' DAY(3) TO SECOND(3)))) AND ((NOT (`o`.`total` BETWEEN CAST(1 AS DECIMAL(1, 0)) AND CAST(5 AS DECIMAL(1, 0)))) AND (`o`.`total` IS NOT NULL)))
  ) AS `matched`
  GROUP BY `q`, `grp`
) AS `grouped`;
