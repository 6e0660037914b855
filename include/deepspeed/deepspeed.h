// deepspeed-cpp: DeepSpeed's training system for LibTorch. Include this one header.
//
//   deepspeed::add_config_arguments(app);   // --deepspeed_config, --local_rank
//   auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(app, net, net->parameters(), data);
//   for (auto batch : *loader) {
//     auto loss = criterion(engine->forward(batch.data), batch.target);
//     engine->backward(loss);
//     engine->step();
//   }
#pragma once

#include <deepspeed/activation_checkpointing.h>
#include <deepspeed/async_io.h>
#include <deepspeed/comm.h>
#include <deepspeed/comms_logger.h>
#include <deepspeed/config.h>
#include <deepspeed/data_loader.h>
#include <deepspeed/engine.h>
#include <deepspeed/errors.h>
#include <deepspeed/flops_profiler.h>
#include <deepspeed/initialize.h>
#include <deepspeed/lr_schedules.h>
#include <deepspeed/monitor.h>
#include <deepspeed/onebit.h>
#include <deepspeed/optimizer.h>
#include <deepspeed/version.h>
