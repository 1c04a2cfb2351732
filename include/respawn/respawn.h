// The respawn C++ API: what a program links against to run checkpointed pipelines or to use
// respawn's stores directly. Link the CMake target `respawn_pipeline` (which brings the ledger,
// SQL and storage layers) and include this header.
//
//   #include <respawn/respawn.h>
//
//   respawn::Result<respawn::PipelineSpec> spec = respawn::ParsePipelineFile("pipeline.toml");
//   respawn::Result<respawn::OpenedStore> store =
//       respawn::OpenStore(respawn::EffectiveStoreUrl(*spec));
//   respawn::RunOptions options;
//   options.store = store->store;
//   respawn::Result<respawn::RunReport> report = respawn::RunPipeline(*spec, options);
//   // report->status: OK, or why the run stopped; what finished before is committed.
//
// Every call returns Status or Result<T> (util/status.h): no exceptions cross this API.
#pragma once

#include "pipeline/check.h"        // CheckPipeline
#include "pipeline/pipeline_gc.h"  // CollectPipelineGarbage
#include "pipeline/runner.h"       // RunPipeline, RunOptions, RunReport
#include "pipeline/spec.h"         // PipelineSpec, ParsePipelineFile, EffectiveStoreUrl
#include "pipeline/status.h"       // GetPipelineStatus
#include "storage/store.h"         // Store: put/get/list/delete, put-if-absent, Capabilities
#include "storage/store_url.h"     // OpenStore("s3://bucket/prefix" | "file:///x" | "memory://x")
#include "util/status.h"           // Status, Result<T>
