#pragma once
// The data sets lethe knows by name — fashion-mnist, mnist and cifar10 (binary version) — with
// what a model and a loader need to know about each: its default folder, normalisation, class
// names and image geometry. The `lethe` commands, the study code and library users load data here.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/data/dataset.h"

namespace lethe::data {

struct DataSource {
  std::string name;
  std::shared_ptr<const Dataset> train, test;  // each null when not asked for
  Normalization normalization;
  std::vector<std::string> class_names;
  int64_t channels = 0, image_size = 0, classes = 0;
};

// The names load_data knows.
const std::vector<std::string>& dataset_names();

// The folder `name` is read from when no folder is given: FOLDER under $LETHE_DATASETS where that
// variable is set (data on a cluster's shared file system, a test's small copies), else under
// Debian's /usr/share/datasets; FOLDER is fashion-mnist, mnist or cifar-10.
std::string default_data_dir(const std::string& name);

// The data set `name` from the folder `dir` (empty: default_data_dir(name)); its training set only
// when `need_train`, its test set only when `need_test` (at least one of them: the image geometry
// is read from the test set, else from the training set), so a run that must never see a test
// sample (lethe tune) does not even read the test files. Throws lethe::Error for an unknown name
// or unreadable files.
DataSource load_data(const std::string& name, const std::string& dir = "", bool need_train = true,
                     bool need_test = true);

}  // namespace lethe::data
