// Momentum's `@`-separated mainlog layout for mtalog's three record kinds:
//   P: time@msgid@batchid@connid@P@domain@bytes@bindinggroup@binding@stage@retries@elapsed@remoteip@errortext
//   A: the same 14 columns with A in field 5 and the note last
//   C: time@@@@C@domain@remoteaddr@bindinggroup@binding@bindingslot@err@errnames
//      (the id fields filled only when an adapter gives the record a message)
// Fields before the last never contain `@` (escaped as \x40); the last field
// is free text. `elapsed` is empty when the message has no creation time
// (zero). No field ever holds a control byte or invalid UTF-8.
#pragma once

#include "record_values.hpp"

namespace mtalog {

// Appends one line, without the newline.
void format_mainlog(const Record &record, const FormatContext &ctx, Buffer &out);

// The escaped binding fields of slots [0, slots) as the core names them now,
// for FormatContext::mainlog_bindings.
BindingTexts mainlog_binding_texts(const FormatContext &ctx, int slots);

} // namespace mtalog
