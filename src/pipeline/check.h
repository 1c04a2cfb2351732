// Checking a pipeline before it runs: its DAG (tables each stage reads, found by DuckDB's
// parser; unknown tables, cycles) and every stage's SQL bound against its inputs' schemas
// (unknown columns or functions), in one scratch database. Also the pieces every command that
// reads a pipeline needs: its DAG, its fingerprints, and SQL errors placed at their line.
#pragma once

#include <vector>

#include "pipeline/dag.h"
#include "pipeline/fingerprint.h"
#include "pipeline/source_reads.h"
#include "pipeline/spec.h"
#include "sql/engine.h"
#include "util/status.h"

namespace respawn {

/// The DAG of `spec`, with the tables each stage reads and the files it reads by name found by
/// DuckDB's parser on `conn` (which it leaves as it was). InvalidArgument naming file and line.
Result<Dag> BuildPipelineDag(const PipelineSpec& spec, Connection& conn);

/// Fingerprints every node of `dag`; the file listings the fingerprints describe stay in `reads`
/// (reads of the run then go through it).
Result<std::vector<FingerprintComponents>> FingerprintNodes(const PipelineSpec& spec,
                                                            const Dag& dag, SourceReads& reads);

/// A DuckDB error in node `v`'s SQL as "<file>:<line>: stage "x": <message>", the line being the
/// one DuckDB points at ("LINE n:" of the statement sent, which had `lines_before` lines in
/// front of the node's SQL), else the line the SQL starts on. Keeps the error's code.
Status NodeSqlError(const PipelineSpec& spec, const Dag& dag, int v, const Status& error,
                    int lines_before);

/// Binds every node's SQL of `dag` in topological order as views in the scratch database of
/// `conn` (one that nothing else uses): a mistake only DuckDB's binder finds is reported before
/// anything runs. Reads no data (a local file source's reader samples its first file for the
/// schema); stages reading sources behind a URL are checked when they run. A stage's
/// expectations are bound against it too (expect.h: CheckExpectationSql).
/// InvalidArgument naming file, line and stage.
Status CheckPipelineSql(const PipelineSpec& spec, const Dag& dag, Connection& conn);

/// The checks RunPipeline makes before it touches the store, in one scratch database: the DAG
/// and every stage's SQL. Returns the DAG, which RunOptions::checked_dag takes so that a run
/// does not check again. InvalidArgument naming file, line and stage. Touches no store.
Result<Dag> CheckPipeline(const PipelineSpec& spec);

}  // namespace respawn
