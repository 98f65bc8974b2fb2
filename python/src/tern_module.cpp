// tern._tern: the compiled half of the Python package (python/tern/__init__.py is the other).
// It binds the public C++ API (tern/tern.hpp) and nothing below it. The Python half turns
// Python values into the few shapes taken here (bytes for texts and paths, contiguous uint8
// arrays for pixels); this file copies them into C++ values while holding the GIL, releases the
// GIL for decoding, preprocessing and the forward pass, and copies the results into new NumPy
// arrays that own their memory.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "tern/tern.hpp"

namespace py = pybind11;

using tern::fail;  // fail("what", x, ": why") throws tern::Error

namespace {

tern::Pooling pooling_option(const std::string& name) {
  return tern::parse_pooling(name.empty() ? "default" : name);
}

tern::EmbedOptions make_options(const std::string& pooling, bool normalize, int batch,
                                int max_length, bool truncate, bool logits,
                                const std::string& layer, const std::string& prompt,
                                const std::string& prompt_text) {
  tern::EmbedOptions o;
  o.pooling = pooling_option(pooling);
  o.normalize = normalize;
  o.batch = batch;
  o.max_length = max_length;
  o.truncate = truncate;
  o.logits = logits;
  o.layer = layer;
  o.prompt = prompt;
  o.prompt_text = prompt_text;
  return o;
}

// One result as a new array [shape...]; several as one stacked array [n, shape...] when `stack`
// and all shapes agree, else a list of arrays.
py::array_t<float> to_array(const tern::Embedding& e) {
  std::vector<py::ssize_t> shape(e.shape.begin(), e.shape.end());
  py::array_t<float> a(shape);
  std::memcpy(a.mutable_data(), e.values.data(), e.values.size() * sizeof(float));
  return a;
}

py::object to_numpy(const std::vector<tern::Embedding>& es, bool stack) {
  bool same = !es.empty();
  for (const auto& e : es) same = same && e.shape == es[0].shape;
  if (stack && same) {
    std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(es.size())};
    shape.insert(shape.end(), es[0].shape.begin(), es[0].shape.end());
    py::array_t<float> a(shape);
    float* out = a.mutable_data();
    for (const auto& e : es) {
      std::memcpy(out, e.values.data(), e.values.size() * sizeof(float));
      out += e.values.size();
    }
    return a;
  }
  py::list l;
  for (const auto& e : es) l.append(to_array(e));
  return l;
}

// The bytes of a Python bytes object (the Python half encodes str before calling in).
std::string bytes_string(const py::handle& h) {
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (!PyBytes_Check(h.ptr())) throw py::type_error("tern._tern: expected bytes");
  if (PyBytes_AsStringAndSize(h.ptr(), &data, &size) != 0) throw py::error_already_set();
  return std::string(data, static_cast<size_t>(size));
}

// One image input, as the Python half passes it: (0, path bytes), (1, encoded bytes) or
// (2, HxWx3 C-contiguous uint8 array). References keep the payloads alive while the GIL is off.
struct ImageItem {
  int kind = 0;
  std::string path;
  py::object keep;
  const uint8_t* data = nullptr;
  size_t size = 0;
  int width = 0, height = 0;
};

std::vector<ImageItem> image_items(const py::list& items) {
  std::vector<ImageItem> out(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    auto t = items[i].cast<py::tuple>();
    ImageItem& it = out[i];
    it.kind = t[0].cast<int>();
    if (it.kind == 0) {
      it.path = bytes_string(t[1]);
    } else if (it.kind == 1) {
      it.keep = t[1];
      char* data = nullptr;
      Py_ssize_t size = 0;
      if (!PyBytes_Check(it.keep.ptr())) throw py::type_error("tern._tern: expected bytes");
      if (PyBytes_AsStringAndSize(it.keep.ptr(), &data, &size) != 0) throw py::error_already_set();
      it.data = reinterpret_cast<const uint8_t*>(data);
      it.size = static_cast<size_t>(size);
    } else {
      auto a = t[1].cast<py::array_t<uint8_t, py::array::c_style>>();
      if (a.ndim() != 3 || a.shape(2) != 3) fail("internal: pixels must be HxWx3");
      if (a.shape(0) > INT32_MAX || a.shape(1) > INT32_MAX)
        fail("an image array of " + std::to_string(a.shape(0)) + "x" + std::to_string(a.shape(1)) +
             " pixels is too large");
      it.height = static_cast<int>(a.shape(0));
      it.width = static_cast<int>(a.shape(1));
      it.data = a.data();
      it.keep = std::move(a);
    }
  }
  return out;
}

// Embeds items [0, n) as one chunk: paths together in one batched call when every item is a
// path (as `tern embed` does), otherwise one call per item. `first` numbers the items in
// messages about in-memory inputs (images[first + i]).
std::vector<tern::Embedding> embed_image_items(const tern::Model& m,
                                               const std::vector<ImageItem>& items,
                                               const tern::EmbedOptions& o, size_t first) {
  bool all_paths = true;
  for (const auto& it : items) all_paths = all_paths && it.kind == 0;
  if (all_paths) {
    std::vector<std::string> paths;
    for (const auto& it : items) paths.push_back(it.path);
    return m.embed_image_files(paths, o);
  }
  std::vector<tern::Embedding> out;
  for (size_t i = 0; i < items.size(); ++i) {
    const ImageItem& it = items[i];
    if (it.kind == 0) {
      out.push_back(m.embed_image_file(it.path, o));
      continue;
    }
    try {
      out.push_back(it.kind == 1 ? m.embed_image_bytes(it.data, it.size, o)
                                 : m.embed_image_rgb(it.data, it.width, it.height, o));
    } catch (const tern::Error& e) {
      fail("images[", first + i, "]: ", e.what());
    }
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_tern, mod) {
  mod.doc() = "Tern's compiled core; use the `tern` package, not this module.";
  static py::exception<tern::Error> error(mod, "Error", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tern::Error& e) {
      error(e.what());
    } catch (const std::bad_alloc&) {
      error("out of memory");
    }
  });
  mod.attr("version") = tern::kVersionString;
  mod.def("describe_cpu", &tern::describe_cpu);

  py::class_<tern::Model>(mod, "NativeModel")
      .def_static(
          "load",
          [](const py::bytes& path, int threads, const std::string& isa) {
            const std::string p = bytes_string(path);
            py::gil_scoped_release nogil;
            return tern::Model::load(p, tern::Options{threads, isa});
          },
          py::arg("path"), py::arg("threads"), py::arg("isa"))
      .def_property_readonly("architecture", &tern::Model::architecture)
      .def_property_readonly("is_image_model", &tern::Model::is_image_model)
      .def_property_readonly("is_text_model", &tern::Model::is_text_model)
      .def_property_readonly("dim", &tern::Model::dim)
      .def_property_readonly("threads", &tern::Model::threads)
      .def_property_readonly("isa", &tern::Model::isa)
      .def_property_readonly("max_length", &tern::Model::max_length)
      .def_property_readonly(
          "default_pooling",
          [](const tern::Model& m) { return std::string(tern::pooling_name(m.default_pooling())); })
      .def_property_readonly("layers", &tern::Model::layers)
      .def(
          "embed_images",
          [](const tern::Model& m, const py::list& items, size_t first, bool stack,
             const std::string& pooling, bool normalize, int batch, bool logits,
             const std::string& layer) {
            const auto o = make_options(pooling, normalize, batch, 0, false, logits, layer, "", "");
            const auto its = image_items(items);
            std::vector<tern::Embedding> out;
            {
              py::gil_scoped_release nogil;
              out = embed_image_items(m, its, o, first);
            }
            return to_numpy(out, stack);
          },
          py::arg("items"), py::arg("first"), py::arg("stack"), py::arg("pooling"),
          py::arg("normalize"), py::arg("batch"), py::arg("logits"), py::arg("layer"))
      .def(
          "embed_texts",
          [](const tern::Model& m, const py::list& texts, bool stack, const std::string& pooling,
             bool normalize, int batch, int max_length, bool truncate, const std::string& layer,
             const std::string& prompt, const std::string& prompt_text) {
            const auto o = make_options(pooling, normalize, batch, max_length, truncate, false,
                                        layer, prompt, prompt_text);
            std::vector<std::string> ts;
            ts.reserve(texts.size());
            for (const auto& t : texts) ts.push_back(bytes_string(t));
            std::vector<tern::Embedding> out;
            {
              py::gil_scoped_release nogil;
              out = m.embed_texts(ts, o);
            }
            return to_numpy(out, stack);
          },
          py::arg("texts"), py::arg("stack"), py::arg("pooling"), py::arg("normalize"),
          py::arg("batch"), py::arg("max_length"), py::arg("truncate"), py::arg("layer"),
          py::arg("prompt"), py::arg("prompt_text"))
      .def(
          "tokenize",
          [](const tern::Model& m, const py::list& texts, bool truncate, int max_length) {
            std::vector<std::string> ts;
            for (const auto& t : texts) ts.push_back(bytes_string(t));
            std::vector<std::vector<int32_t>> out;
            {
              py::gil_scoped_release nogil;
              for (size_t i = 0; i < ts.size(); ++i) {
                try {
                  out.push_back(m.tokenize(ts[i], truncate, max_length));
                } catch (const tern::Error& e) {
                  fail("text ", i + 1, ": ", e.what());
                }
              }
            }
            return out;
          },
          py::arg("texts"), py::arg("truncate"), py::arg("max_length"));
}
