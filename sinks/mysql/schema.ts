/**
 * Versioned schema migrations for the MySQL sink. Each migration runs once, in order, recorded in
 * `tracefold_schema_migrations`; statements work on MariaDB 10.11 and MySQL 8. Minutes are epoch
 * milliseconds (BIGINT) so no time zone is involved. Histograms are stored sparse: one row per
 * non-empty bucket, added to on upsert, so merging pods and minutes is a SUM.
 */
export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

const NAME = "VARCHAR(255) NOT NULL";
const LAT = (p: string) => `${p}_count BIGINT NOT NULL DEFAULT 0, ${p}_sum DOUBLE NOT NULL DEFAULT 0, ${p}_min DOUBLE NULL, ${p}_max DOUBLE NULL`;
const TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "topology, stats, connectivity, offsets",
    statements: [
      `CREATE TABLE IF NOT EXISTS services (name ${NAME}, first_minute BIGINT NOT NULL, last_minute BIGINT NOT NULL, PRIMARY KEY (name)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS operations (service ${NAME}, name ${NAME}, first_minute BIGINT NOT NULL, PRIMARY KEY (service, name)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS edge_minutes (
        minute BIGINT NOT NULL, client ${NAME}, server ${NAME}, type VARCHAR(16) NOT NULL,
        calls BIGINT NOT NULL, client_calls BIGINT NOT NULL, server_calls BIGINT NOT NULL, paired BIGINT NOT NULL,
        failed BIGINT NOT NULL, failed_client BIGINT NOT NULL, failed_server BIGINT NOT NULL, negative_lag BIGINT NOT NULL,
        ${LAT("client_lat")}, ${LAT("server_lat")}, ${LAT("lag")},
        PRIMARY KEY (minute, client, server, type), KEY edge_by_pair (client, server, minute)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS edge_latency_buckets (
        minute BIGINT NOT NULL, client ${NAME}, server ${NAME}, type VARCHAR(16) NOT NULL,
        which CHAR(1) NOT NULL, bucket SMALLINT NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (minute, client, server, type, which, bucket)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS service_minutes (
        minute BIGINT NOT NULL, service ${NAME},
        spans BIGINT NOT NULL, server_calls BIGINT NOT NULL, failures BIGINT NOT NULL, error_spans BIGINT NOT NULL,
        orphan_spans BIGINT NOT NULL, unpaired_client BIGINT NOT NULL, unpaired_server BIGINT NOT NULL,
        duplicate_spans BIGINT NOT NULL, late_spans BIGINT NOT NULL, traces BIGINT NOT NULL, connected_traces BIGINT NOT NULL,
        ${LAT("lat")},
        PRIMARY KEY (minute, service), KEY service_by_name (service, minute)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS service_latency_buckets (
        minute BIGINT NOT NULL, service ${NAME}, bucket SMALLINT NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (minute, service, bucket)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS operation_minutes (
        minute BIGINT NOT NULL, service ${NAME}, operation ${NAME},
        spans BIGINT NOT NULL, server_calls BIGINT NOT NULL, failures BIGINT NOT NULL, error_spans BIGINT NOT NULL,
        ${LAT("lat")},
        PRIMARY KEY (minute, service, operation)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS operation_latency_buckets (
        minute BIGINT NOT NULL, service ${NAME}, operation ${NAME}, bucket SMALLINT NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (minute, service, operation, bucket)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS trace_minutes (
        minute BIGINT NOT NULL, traces BIGINT NOT NULL, connected BIGINT NOT NULL, cut BIGINT NOT NULL, evicted BIGINT NOT NULL,
        PRIMARY KEY (minute)) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS consumed_offsets (
        consumer_group VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL, kafka_partition INT NOT NULL,
        next_offset BIGINT NOT NULL, updated_at BIGINT NOT NULL,
        PRIMARY KEY (consumer_group, topic, kafka_partition)) ${TABLE}`,
    ],
  },
  {
    version: 2,
    name: "fold checkpoints: pending state per input partition",
    statements: [
      `CREATE TABLE IF NOT EXISTS fold_checkpoints (
        consumer_group VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL, kafka_partition INT NOT NULL,
        state LONGBLOB NULL, updated_at BIGINT NOT NULL,
        PRIMARY KEY (consumer_group, topic, kafka_partition)) ${TABLE}`,
    ],
  },
  {
    version: 3,
    name: "partition owners: fencing epochs for checkpoints",
    statements: [
      `CREATE TABLE IF NOT EXISTS partition_owners (
        consumer_group VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL, kafka_partition INT NOT NULL,
        epoch BIGINT NOT NULL, owner VARCHAR(255) NOT NULL, claimed_at BIGINT NOT NULL,
        PRIMARY KEY (consumer_group, topic, kafka_partition)) ${TABLE}`,
    ],
  },
  {
    version: 4,
    name: "fold checkpoints in chunks: no row or statement near max_allowed_packet",
    statements: [
      `CREATE TABLE IF NOT EXISTS fold_checkpoint_chunks (
        consumer_group VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL, kafka_partition INT NOT NULL,
        seq INT NOT NULL, bytes LONGBLOB NOT NULL,
        PRIMARY KEY (consumer_group, topic, kafka_partition, seq)) ${TABLE}`,
    ],
  },
  {
    version: 5,
    name: "incremental fold checkpoints: a partition's state is a chain of increments",
    statements: [
      `ALTER TABLE fold_checkpoint_chunks ADD COLUMN increment BIGINT NOT NULL DEFAULT 0 AFTER kafka_partition,
        DROP PRIMARY KEY, ADD PRIMARY KEY (consumer_group, topic, kafka_partition, increment, seq)`,
    ],
  },
];

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS tracefold_schema_migrations (
  version INT NOT NULL, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (version)) ${TABLE}`;
