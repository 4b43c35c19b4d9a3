// report.hpp: every human- or machine-readable rendering of the statistics: the exit report of
// `mallard run --report` (text or JSON), glibc's malloc_stats text and malloc_info XML. Takes its
// figures from the snapshot; writes through a TextWriter (no printf, no allocation).
#pragma once

#include "os/text_writer.hpp"

namespace mallard::stats {

void write_report_text(os::TextWriter& w);
void write_report_json(os::TextWriter& w);
void write_malloc_stats(os::TextWriter& w);
void write_malloc_info(os::TextWriter& w);

}  // namespace mallard::stats
