// Runs the built `qalign` binary (QALIGN_CLI_PATH) and captures its exit code, stdout and stderr.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace qalign::testing {

struct CliResult {
  int exit_code = -1;  // 128 + signal number when the process was killed (a crash)
  std::string out;
  std::string err;
  int StderrLines() const {
    int lines = 0;
    for (char c : err) lines += c == '\n';
    return lines;
  }
};

inline std::string SlurpAndRemove(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::filesystem::remove(path);
  return buffer.str();
}

inline CliResult RunCli(const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string base =
      (std::filesystem::temp_directory_path() /
       ("qalign_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
          .string();
  const std::string out_path = base + ".out", err_path = base + ".err";
  CliResult result;
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) ::_exit(126);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv;
    std::string program = QALIGN_CLI_PATH;
    argv.push_back(program.data());
    std::vector<std::string> copies = args;
    for (std::string& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  result.out = SlurpAndRemove(out_path);
  result.err = SlurpAndRemove(err_path);
  return result;
}

}  // namespace qalign::testing
