// The commit coordinator: a linearizable "create record N+1 if absent" kept outside the store,
// for stores that cannot put-if-absent (OpenStack Swift's s3api answers 501 to a conditional
// PUT). ledger.h ("Commit modes") says how the ledger uses it; the model is Delta Lake's commit
// through DynamoDB conditional writes and Iceberg's catalog compare-and-swap: safety rests on a
// database's primary key, never on a clock.
//
// A coordinator holds, per namespace (a string naming one ledger in one store), the ledger's
// commit records by sequence. It never holds data objects; those stay in the store.
//
// PostgreSQL implementation (OpenCoordinator): one table, created on first use,
//
//   respawn_ledger_records(namespace text, sequence bigint, record bytea, created_at timestamptz,
//                          PRIMARY KEY (namespace, sequence))
//
// and CreateIfAbsent is one `INSERT ... ON CONFLICT (namespace, sequence) DO NOTHING`: one row
// inserted = ours, none = another writer's. Every call is one statement in autocommit mode (no
// transaction stays open while a process may be paused). The connection is reopened after it
// breaks; keepalives and a TCP user timeout bound a call to a server that vanished.
//
// Thread-safety: implementations are safe for concurrent use (the PostgreSQL one serializes
// calls on its one connection).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace respawn::ledger {

class CommitCoordinator {
 public:
  virtual ~CommitCoordinator() = default;

  /// Where it is, for messages: "postgresql://user@host:port/db". Never holds a password.
  virtual std::string Url() const = 0;

  /// Creates record `sequence` (>= 1) of `ns` holding `bytes` if no record of that sequence
  /// exists. One attempt, no retries (the ledger retries and resolves ambiguity):
  /// OK = created by this call; AlreadyExists = a record exists (another writer's, or ours from
  /// an attempt whose answer was lost: read it back and compare bytes); Unavailable = the
  /// connection failed, and whether the record was created is unknown.
  virtual Status CreateIfAbsent(const std::string& ns, uint64_t sequence,
                                std::string_view bytes) = 0;

  /// The records of `ns` with first <= sequence <= last that exist, by sequence.
  virtual Result<std::map<uint64_t, std::string>> Read(const std::string& ns, uint64_t first,
                                                       uint64_t last) = 0;

  /// The highest sequence of `ns`; 0 when it has none.
  virtual Result<uint64_t> Latest(const std::string& ns) = 0;

  /// Deletes the records of `ns` with sequence < `below` (ledger GC); returns how many it did.
  virtual Result<uint64_t> DeleteBelow(const std::string& ns, uint64_t below) = 0;
};

/// Whether `url` names a coordinator OpenCoordinator understands ("postgresql://" or
/// "postgres://").
bool IsCoordinatorUrl(std::string_view url);

/// Checks the syntax of a coordinator URL without connecting. InvalidArgument naming the
/// problem (never the password) and the expected form.
Status ValidateCoordinatorUrl(std::string_view url);

/// `url` without its password ("postgresql://user:secret@host/db" -> "postgresql://user@host/db";
/// a `password=` query parameter is dropped too): what messages may show.
std::string RedactCoordinatorUrl(std::string_view url);

/// The password written in `url` (decoded), or "" when it has none: for redaction of output.
std::string CoordinatorUrlPassword(std::string_view url);

/// Connects to the PostgreSQL coordinator at `url` (a libpq URI; a password may also come from
/// PGPASSWORD or ~/.pgpass, as for psql), checks it answers, and creates the records table if
/// it does not exist. Configuration errors, each naming the URL without its password and the
/// fix: InvalidArgument (not a PostgreSQL URL, bad syntax), FailedPrecondition (server
/// unreachable, credentials rejected, database or role missing, no right to create the table).
Result<std::shared_ptr<CommitCoordinator>> OpenCoordinator(const std::string& url);

}  // namespace respawn::ledger
