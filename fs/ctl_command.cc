#include "fs/ctl_command.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "fs/number.h"
#include "vmcore/failure_reason.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

using vm::KernReturn;

// Splits a line into whitespace-separated tokens, dropping a `#` comment.
// Returns false with *error set for a byte that has no business in a
// command (control characters, NUL, non-ASCII).
bool Tokenize(std::string_view line, std::vector<std::string_view>* tokens,
              std::string* error) {
  std::size_t i = 0;
  while (i < line.size()) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == '#') break;
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (c < 0x20 || c >= 0x7f) {
      *error = fmt::format("unexpected byte {:#04x} in command", c);
      return false;
    }
    const std::size_t start = i;
    while (i < line.size()) {
      const unsigned char d = static_cast<unsigned char>(line[i]);
      if (d == ' ' || d == '\t' || d == '\r' || d == '#' || d < 0x20 ||
          d >= 0x7f) {
        break;
      }
      ++i;
    }
    tokens->push_back(line.substr(start, i - start));
  }
  return true;
}

// ParseNumber (fs/number.h) with this grammar's error lines.
bool Number(std::string_view text, NumberForm form, std::uint64_t* out,
            std::string* error) {
  const ParsedNumber n = ParseNumber(text, form);
  switch (n.error) {
    case ParsedNumber::Error::kNone:
      *out = n.value;
      return true;
    case ParsedNumber::Error::kMalformed:
      *error = "bad number " + Quoted(text);
      return false;
    case ParsedNumber::Error::kTooLarge:
      *error = "number too large " + Quoted(text);
      return false;
  }
  return false;
}

// "rwx", "r--", "---": the form maps shows.
bool ParseProt(std::string_view text, vm::vm_prot_t* out, std::string* error) {
  constexpr char kLetters[] = {'r', 'w', 'x'};
  constexpr vm::vm_prot_t kBits[] = {vm::VM_PROT_READ, vm::VM_PROT_WRITE,
                                     vm::VM_PROT_EXECUTE};
  if (text.size() != 3) {
    *error = "bad protection " + Quoted(text) + " (want e.g. rw- or r-x)";
    return false;
  }
  vm::vm_prot_t prot = 0;
  for (int i = 0; i < 3; ++i) {
    if (text[i] == kLetters[i]) {
      prot |= kBits[i];
    } else if (text[i] != '-') {
      *error = "bad protection " + Quoted(text) + " (want e.g. rw- or r-x)";
      return false;
    }
  }
  *out = prot;
  return true;
}

bool ParseInheritance(std::string_view text, vm::vm_inherit_t* out,
                      std::string* error) {
  if (text == "share") {
    *out = vm::VM_INHERIT_SHARE;
  } else if (text == "copy") {
    *out = vm::VM_INHERIT_COPY;
  } else if (text == "none") {
    *out = vm::VM_INHERIT_NONE;
  } else {
    *error = "bad inheritance " + Quoted(text) + " (want share, copy or none)";
    return false;
  }
  return true;
}

// Checks the argument count: usage is what the error shows.
bool Arity(const std::vector<std::string_view>& t, std::size_t min,
           std::size_t max, const char* usage, std::string* error) {
  const std::size_t args = t.size() - 1;
  if (args < min || args > max) {
    *error = std::string("usage: ") + usage;
    return false;
  }
  return true;
}

bool ParseTokens(const std::vector<std::string_view>& t, Grammar grammar,
                 Command* c, std::string* error) {
  using Op = Command::Op;
  const std::string_view verb = t[0];
  if (verb == "allocate") {
    if (t.size() >= 2 && t[1] == "anywhere") {
      c->op = Op::kAllocateAnywhere;
      return Arity(t, 2, 2, "allocate anywhere SIZE", error) &&
             Number(t[2], NumberForm::kSize, &c->size, error);
    }
    c->op = Op::kAllocate;
    return Arity(t, 2, 2, "allocate ADDR SIZE | allocate anywhere SIZE",
                 error) &&
           Number(t[1], NumberForm::kPlain, &c->address, error) &&
           Number(t[2], NumberForm::kSize, &c->size, error);
  }
  if (verb == "deallocate") {
    c->op = Op::kDeallocate;
    return Arity(t, 2, 2, "deallocate ADDR SIZE", error) &&
           Number(t[1], NumberForm::kPlain, &c->address, error) &&
           Number(t[2], NumberForm::kSize, &c->size, error);
  }
  if (verb == "protect") {
    c->op = Op::kProtect;
    if (!Arity(t, 3, 4, "protect ADDR SIZE [max] PROT", error)) return false;
    if (t.size() == 5) {
      if (t[3] != "max") {
        *error = "usage: protect ADDR SIZE [max] PROT";
        return false;
      }
      c->set_maximum = true;
    }
    return Number(t[1], NumberForm::kPlain, &c->address, error) &&
           Number(t[2], NumberForm::kSize, &c->size, error) &&
           ParseProt(t.back(), &c->prot, error);
  }
  if (verb == "inherit") {
    c->op = Op::kInherit;
    return Arity(t, 3, 3, "inherit ADDR SIZE share|copy|none", error) &&
           Number(t[1], NumberForm::kPlain, &c->address, error) &&
           Number(t[2], NumberForm::kSize, &c->size, error) &&
           ParseInheritance(t[3], &c->inheritance, error);
  }
  if (verb == "copy") {
    c->op = Op::kCopy;
    return Arity(t, 3, 3, "copy SRC SIZE DST", error) &&
           Number(t[1], NumberForm::kPlain, &c->address, error) &&
           Number(t[2], NumberForm::kSize, &c->size, error) &&
           Number(t[3], NumberForm::kPlain, &c->dest, error);
  }
  if (verb == "copy-from") {
    c->op = Op::kCopyFrom;
    constexpr const char* kUsage =
        "copy-from TASK SRC SIZE DST [alloc] [destroy]";
    if (!Arity(t, 4, 6, kUsage, error)) return false;
    for (std::size_t i = 5; i < t.size(); ++i) {
      bool* flag = t[i] == "alloc"     ? &c->dst_alloc
                   : t[i] == "destroy" ? &c->src_destroy
                                       : nullptr;
      if (flag == nullptr || *flag) {
        *error = std::string("usage: ") + kUsage;
        return false;
      }
      *flag = true;
    }
    c->name = std::string(t[1]);
    return Number(t[2], NumberForm::kPlain, &c->address, error) &&
           Number(t[3], NumberForm::kSize, &c->size, error) &&
           Number(t[4], NumberForm::kPlain, &c->dest, error);
  }
  if (verb == "remap") {
    c->op = Op::kRemap;
    constexpr const char* kUsage =
        "remap TASK SRC SIZE DST|anywhere share|copy";
    if (!Arity(t, 5, 5, kUsage, error)) return false;
    if (t[5] != "share" && t[5] != "copy") {
      *error = std::string("usage: ") + kUsage;
      return false;
    }
    c->copy = t[5] == "copy";
    c->anywhere = t[4] == "anywhere";
    c->name = std::string(t[1]);
    return Number(t[2], NumberForm::kPlain, &c->address, error) &&
           Number(t[3], NumberForm::kSize, &c->size, error) &&
           (c->anywhere || Number(t[4], NumberForm::kPlain, &c->dest, error));
  }
  if (verb == "fork") {
    c->op = Op::kFork;
    if (!Arity(t, 1, 1, "fork CHILD", error)) return false;
    c->name = std::string(t[1]);
    return true;
  }
  if (grammar == Grammar::kManifest) {
    if (verb == "task") {
      c->op = Op::kTask;
      if (!Arity(t, 1, 1, "task NAME", error)) return false;
      c->name = std::string(t[1]);
      return true;
    }
    if (verb == "fill") {
      c->op = Op::kFill;
      std::uint64_t byte = 0;
      if (!Arity(t, 3, 3, "fill ADDR SIZE BYTE", error) ||
          !Number(t[1], NumberForm::kPlain, &c->address, error) ||
          !Number(t[2], NumberForm::kSize, &c->size, error) ||
          !Number(t[3], NumberForm::kPlain, &byte, error)) {
        return false;
      }
      if (byte > 0xff) {
        *error = "fill: BYTE must be 0 to 255, not " + Quoted(t[3]);
        return false;
      }
      c->byte = static_cast<unsigned char>(byte);
      return true;
    }
    if (verb == "load") {
      c->op = Op::kLoad;
      if (!Arity(t, 2, 2, "load ADDR FILE", error)) return false;
      c->name = std::string(t[2]);
      return Number(t[1], NumberForm::kPlain, &c->address, error);
    }
    if (verb == "core") {
      c->op = Op::kCore;
      if (!Arity(t, 1, 1, "core FILE", error)) return false;
      c->name = std::string(t[1]);
      return true;
    }
  }
  *error = "unknown command " + Quoted(verb);
  return false;
}

std::string ResultLine(KernReturn kr) {
  return "error " + std::string(vm::KernReturnName(kr));
}

KernReturn Run(const Command& c, vm::Task& task, ExecContext& context,
               vm::vm_address_t* anywhere_address) {
  using Op = Command::Op;
  switch (c.op) {
    case Op::kAllocate: {
      vm::vm_address_t address = c.address;
      return vm::vm_allocate(task, &address, c.size, false);
    }
    case Op::kAllocateAnywhere:
      return vm::vm_allocate(task, anywhere_address, c.size, true);
    case Op::kDeallocate:
      return vm::vm_deallocate(task, c.address, c.size);
    case Op::kProtect:
      return vm::vm_protect(task, c.address, c.size, c.set_maximum, c.prot);
    case Op::kInherit:
      return vm::vm_inherit(task, c.address, c.size, c.inheritance);
    case Op::kCopy:
      return vm::vm_copy(task, c.address, c.size, c.dest);
    case Op::kCopyFrom:
      return MapCopyFrom(
          context, task, context.system->FindTask(c.name),
          fmt::format("no task is named {}", c.name),
          MapCopyArgs{c.address, c.size, c.dest, c.dst_alloc, c.src_destroy});
    case Op::kFork: {
      // The child holds the parent's contents: forking takes read access
      // to the parent's mem as well as control of it (docs/reference.md §4).
      if (context.may_access) {
        const KernReturn kr = context.may_access(task, /*want_write=*/false);
        if (kr != vm::KERN_SUCCESS) return kr;
      }
      const vm::KernResult<std::shared_ptr<vm::Task>> child =
          vm::task_fork(*context.system, task, c.name);
      if (child.ok() && context.on_task_created) {
        context.on_task_created(child.value());
      }
      return child.code();
    }
    case Op::kRemap: {
      RemapArgs args;
      args.src = c.address;
      args.size = c.size;
      args.target = c.dest;
      args.anywhere = c.anywhere;
      args.copy = c.copy;
      const KernReturn kr =
          RemapFrom(context, task, context.system->FindTask(c.name),
                    fmt::format("no task is named {}", c.name), &args);
      *anywhere_address = args.target;
      return kr;
    }
    case Op::kTask:
    case Op::kFill:
    case Op::kLoad:
    case Op::kCore:
      break;
  }
  return vm::KERN_INVALID_ARGUMENT;
}

}  // namespace

KernReturn MapCopyFrom(ExecContext& context, vm::Task& task,
                       const std::shared_ptr<vm::Task>& source,
                       std::string_view missing, const MapCopyArgs& args) {
  if (source == nullptr) {
    vm::SetFailureReason(missing);
    return vm::KERN_INVALID_TASK;
  }
  KernReturn kr = context.may_access
                      ? context.may_access(*source, args.src_destroy)
                      : vm::KERN_SUCCESS;
  if (kr == vm::KERN_SUCCESS) {
    kr = vm::vm_map_copy(task, args.dst, *source, args.src, args.size,
                         args.dst_alloc, args.src_destroy);
  }
  if (kr != vm::KERN_SUCCESS && context.on_source_failure) {
    context.on_source_failure(*source, args, kr);
  }
  return kr;
}

KernReturn RemapFrom(ExecContext& context, vm::Task& task,
                     const std::shared_ptr<vm::Task>& source,
                     std::string_view missing, RemapArgs* args) {
  if (source == nullptr) {
    vm::SetFailureReason(missing);
    return vm::KERN_INVALID_TASK;
  }
  KernReturn kr = context.may_access
                      ? context.may_access(*source, /*want_write=*/!args->copy)
                      : vm::KERN_SUCCESS;
  if (kr != vm::KERN_SUCCESS) {
    if (context.on_remap_source_failure) {
      context.on_remap_source_failure(*source, *args, kr);
    }
    return kr;
  }
  // A caller that may read the source but not change it gets no more from
  // a copy than vm_read would give: pages without read stay out of reach
  // (it could otherwise raise their protection in its own copy).
  // vm_protect on the source is what lifts that, so write access does.
  const bool source_readable =
      context.may_access &&
      context.may_access(*source, /*want_write=*/true) != vm::KERN_SUCCESS;
  vm::vm_address_t target = args->target;
  kr = vm::vm_remap(task, &target, args->size, args->anywhere, *source,
                    args->src, args->copy, &args->cur, &args->max,
                    args->inheritance, source_readable);
  if (kr == vm::KERN_SUCCESS) {
    args->target = target;
  } else if (context.on_remap_source_failure) {
    context.on_remap_source_failure(*source, *args, kr);
  }
  return kr;
}

std::string Quoted(std::string_view s, std::size_t max) {
  std::string out = "'";
  out.append(s.substr(0, max));
  if (s.size() > max) out.append("...");
  out.push_back('\'');
  return out;
}

ParseResult ParseCommand(std::string_view line, Grammar grammar) {
  ParseResult result;
  std::vector<std::string_view> tokens;
  if (!Tokenize(line, &tokens, &result.error)) return result;
  if (tokens.empty()) {
    result.ok = true;
    result.empty = true;
    return result;
  }
  result.ok = ParseTokens(tokens, grammar, &result.command, &result.error);
  return result;
}

KernReturn ExecuteCommand(const Command& command, vm::Task& task,
                          ExecContext& context, std::string* result) {
  vm::vm_address_t address = 0;
  const KernReturn kr = Run(command, task, context, &address);
  if (kr != vm::KERN_SUCCESS) {
    *result = ResultLine(kr);
  } else if (command.op == Command::Op::kAllocateAnywhere ||
             command.op == Command::Op::kRemap) {
    *result = fmt::format("{:#x}", address);
  } else {
    *result = "ok";
  }
  return kr;
}

}  // namespace taskfs::fs
