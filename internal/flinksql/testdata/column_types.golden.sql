SET 'pipeline.name' = 'cdcq-env1-q_0123456789abcdef0123';

SET 'table.exec.source.cdc-events-duplicate' = 'true';

SET 'table.local-time-zone' = 'UTC';

CREATE TEMPORARY TABLE `app.everything` (
  `id` BIGINT,
  `c_smallint` SMALLINT,
  `c_integer` INT,
  `c_bigint` BIGINT,
  `c_numeric_10_2` DECIMAL(10, 2),
  `c_numeric` DECIMAL(38, 16),
  `c_numeric_65_30` DECIMAL(38, 16),
  `c_real` FLOAT,
  `c_double` DOUBLE,
  `c_boolean` BOOLEAN,
  `c_text` STRING,
  `c_varchar` STRING,
  `c_char` STRING,
  `c_uuid` STRING,
  `c_date` STRING,
  `c_time` STRING,
  `c_timestamp` TIMESTAMP_LTZ(3),
  `c_timestamp_default` TIMESTAMP_LTZ(6),
  `c_timestamptz` TIMESTAMP_LTZ(6),
  `c_timetz` STRING,
  `c_json` STRING,
  `c_jsonb` STRING,
  `c_bytea` BYTES,
  `c_enum` STRING,
  `c_inet` STRING,
  `c_text_array` ARRAY<STRING>,
  `c_integer_array` ARRAY<INT>,
  `c_numeric_array` ARRAY<DECIMAL(10, 2)>,
  PRIMARY KEY (`id`) NOT ENFORCED
) WITH (
  'connector' = 'kafka',
  'topic-pattern' = 'env1\.app\.everything',
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
  `key_group` ROW<`c_smallint` SMALLINT, `c_integer` INT, `c_bigint` BIGINT, `c_numeric_10_2` DECIMAL(10, 2), `c_numeric` DECIMAL(38, 16), `c_numeric_65_30` DECIMAL(38, 16), `c_real` FLOAT, `c_double` DOUBLE, `c_boolean` BOOLEAN, `c_text` STRING, `c_varchar` STRING, `c_char` STRING, `c_uuid` STRING, `c_date` DATE, `c_time` TIME(3), `c_timestamp` TIMESTAMP(3), `c_timestamp_default` TIMESTAMP(6), `c_timestamptz` TIMESTAMP_LTZ(6), `c_timetz` STRING, `c_json` STRING, `c_jsonb` STRING, `c_bytea` BYTES, `c_enum` STRING, `c_inet` STRING, `c_text_array` ARRAY<STRING>, `c_integer_array` ARRAY<INT>, `c_numeric_array` ARRAY<DECIMAL(10, 2)>> NOT NULL,
  `query_id` STRING,
  `c_smallint` SMALLINT,
  `c_integer` INT,
  `c_bigint` BIGINT,
  `c_numeric_10_2` DECIMAL(10, 2),
  `c_numeric` DECIMAL(38, 16),
  `c_numeric_65_30` DECIMAL(38, 16),
  `c_real` FLOAT,
  `c_double` DOUBLE,
  `c_boolean` BOOLEAN,
  `c_text` STRING,
  `c_varchar` STRING,
  `c_char` STRING,
  `c_uuid` STRING,
  `c_date` DATE,
  `c_time` TIME(3),
  `c_timestamp` TIMESTAMP(3),
  `c_timestamp_default` TIMESTAMP(6),
  `c_timestamptz` TIMESTAMP_LTZ(6),
  `c_timetz` STRING,
  `c_json` STRING,
  `c_jsonb` STRING,
  `c_bytea` BYTES,
  `c_enum` STRING,
  `c_inet` STRING,
  `c_text_array` ARRAY<STRING>,
  `c_integer_array` ARRAY<INT>,
  `c_numeric_array` ARRAY<DECIMAL(10, 2)>,
  `count` BIGINT,
  `first_day` DATE,
  `last_change` TIMESTAMP_LTZ(6),
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
  `grouped`.`grp`.`c_smallint` AS `c_smallint`,
  `grouped`.`grp`.`c_integer` AS `c_integer`,
  `grouped`.`grp`.`c_bigint` AS `c_bigint`,
  `grouped`.`grp`.`c_numeric_10_2` AS `c_numeric_10_2`,
  `grouped`.`grp`.`c_numeric` AS `c_numeric`,
  `grouped`.`grp`.`c_numeric_65_30` AS `c_numeric_65_30`,
  `grouped`.`grp`.`c_real` AS `c_real`,
  `grouped`.`grp`.`c_double` AS `c_double`,
  `grouped`.`grp`.`c_boolean` AS `c_boolean`,
  `grouped`.`grp`.`c_text` AS `c_text`,
  `grouped`.`grp`.`c_varchar` AS `c_varchar`,
  `grouped`.`grp`.`c_char` AS `c_char`,
  `grouped`.`grp`.`c_uuid` AS `c_uuid`,
  `grouped`.`grp`.`c_date` AS `c_date`,
  `grouped`.`grp`.`c_time` AS `c_time`,
  `grouped`.`grp`.`c_timestamp` AS `c_timestamp`,
  `grouped`.`grp`.`c_timestamp_default` AS `c_timestamp_default`,
  `grouped`.`grp`.`c_timestamptz` AS `c_timestamptz`,
  `grouped`.`grp`.`c_timetz` AS `c_timetz`,
  `grouped`.`grp`.`c_json` AS `c_json`,
  `grouped`.`grp`.`c_jsonb` AS `c_jsonb`,
  `grouped`.`grp`.`c_bytea` AS `c_bytea`,
  `grouped`.`grp`.`c_enum` AS `c_enum`,
  `grouped`.`grp`.`c_inet` AS `c_inet`,
  `grouped`.`grp`.`c_text_array` AS `c_text_array`,
  `grouped`.`grp`.`c_integer_array` AS `c_integer_array`,
  `grouped`.`grp`.`c_numeric_array` AS `c_numeric_array`,
  `a1` AS `count`,
  CAST(`a2` AS DATE) AS `first_day`,
  CAST(`a3` AS TIMESTAMP_LTZ(6)) AS `last_change`
FROM (
  SELECT
    `q`,
    `grp`,
    COUNT(*) AS `a1`,
    MIN(`x2`) AS `a2`,
    MAX(`x3`) AS `a3`
  FROM (
    SELECT
      COALESCE(NULLIF(CAST('q_0123456789abcdef0123' AS STRING), CAST(`everything`.`id` AS STRING)), CAST('q_0123456789abcdef0123' AS STRING)) AS `q`,
      CAST(ROW(`everything`.`c_smallint`, `everything`.`c_integer`, `everything`.`c_bigint`, `everything`.`c_numeric_10_2`, `everything`.`c_numeric`, `everything`.`c_numeric_65_30`, `everything`.`c_real`, `everything`.`c_double`, `everything`.`c_boolean`, `everything`.`c_text`, `everything`.`c_varchar`, `everything`.`c_char`, `everything`.`c_uuid`, TRY_CAST(REPLACE(`everything`.`c_date`, 'Z', '') AS DATE), TRY_CAST(REPLACE(`everything`.`c_time`, 'Z', '') AS TIME(3)), CAST(`everything`.`c_timestamp` AS TIMESTAMP(3)), CAST(`everything`.`c_timestamp_default` AS TIMESTAMP(6)), `everything`.`c_timestamptz`, `everything`.`c_timetz`, `everything`.`c_json`, `everything`.`c_jsonb`, `everything`.`c_bytea`, `everything`.`c_enum`, `everything`.`c_inet`, `everything`.`c_text_array`, `everything`.`c_integer_array`, `everything`.`c_numeric_array`) AS ROW<`c_smallint` SMALLINT, `c_integer` INT, `c_bigint` BIGINT, `c_numeric_10_2` DECIMAL(10, 2), `c_numeric` DECIMAL(38, 16), `c_numeric_65_30` DECIMAL(38, 16), `c_real` FLOAT, `c_double` DOUBLE, `c_boolean` BOOLEAN, `c_text` STRING, `c_varchar` STRING, `c_char` STRING, `c_uuid` STRING, `c_date` DATE, `c_time` TIME(3), `c_timestamp` TIMESTAMP(3), `c_timestamp_default` TIMESTAMP(6), `c_timestamptz` TIMESTAMP_LTZ(6), `c_timetz` STRING, `c_json` STRING, `c_jsonb` STRING, `c_bytea` BYTES, `c_enum` STRING, `c_inet` STRING, `c_text_array` ARRAY<STRING>, `c_integer_array` ARRAY<INT>, `c_numeric_array` ARRAY<DECIMAL(10, 2)>>) AS `grp`,
      TRY_CAST(REPLACE(`everything`.`c_date`, 'Z', '') AS DATE) AS `x2`,
      `everything`.`c_timestamptz` AS `x3`
    FROM `app.everything` AS `everything`
  ) AS `matched`
  GROUP BY `q`, `grp`
) AS `grouped`;
