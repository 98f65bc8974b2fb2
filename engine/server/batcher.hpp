#pragma once
// Dynamic batching: requests from many HTTP threads are queued input by input, and one batcher
// thread runs them through the backend, as many together as --max-batch-tokens allows
// (padded tokens: inputs x the longest of them; an image costs --image-tokens). Inputs that
// differ in pooling or normalisation are not mixed. With max_batch_tokens == 0 requests are
// never merged: each runs alone, its inputs in one forward pass. There is no waiting to fill a
// batch: whatever queued up while the previous batch ran goes next.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/server/backend.hpp"
#include "engine/server/metrics.hpp"

namespace tern::server {

// One request's inputs and, once done, their embeddings (in the same order) or an error.
class Job {
 public:
  Job(BatchKey key, std::vector<Input> inputs);
  const BatchKey key;
  const std::vector<Input> inputs;

  void wait();  // until every input has its result or the job failed
  bool failed() const;
  const std::string& error() const { return error_; }  // after wait()
  std::vector<Embedding>& results() { return results_; }

 private:
  friend class Batcher;
  void deliver(size_t index, Embedding e);
  void fail(const std::string& message);  // the first failure wins; pending inputs are dropped
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Embedding> results_;
  size_t remaining_;
  bool failed_ = false;
  std::string error_;
};

class Batcher {
 public:
  Batcher(const Backend& backend, Metrics& metrics, int64_t max_batch_tokens);
  ~Batcher();
  void submit(const std::shared_ptr<Job>& job);
  void stop();  // runs what is queued, then joins the thread

 private:
  struct Item {
    std::shared_ptr<Job> job;
    size_t index;
  };
  void loop();
  std::vector<Item> take_batch();  // with mutex_ held, queue_ not empty
  void run_batch(const std::vector<Item>& batch);

  const Backend& backend_;
  Metrics& metrics_;
  const int64_t max_batch_tokens_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tern::server
