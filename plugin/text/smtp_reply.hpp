// The SMTP reply a failure's text carries: its reply code (RFC 5321) and its
// enhanced status code (RFC 3463, class.subject.detail), read from the note
// or DSN as remote servers and MTAs write them:
//   "550 5.1.1 <a@b>: Recipient address rejected"         code and status
//   "550-5.1.1 The email account ... \n550 5.1.1 ..."       multi-line: the first line
//   "451 Temporary local problem"                          a code alone
//   "SMTP error from remote mail server after RCPT TO:<a@b>: 550-5.7.1 ..."
//   "host mx.example.com said: 554 5.7.1 Service unavailable"
//   "Delivery failed (status 5.2.2, mailbox full)"         a status in the text only
// Anything else (garbage, a local error text) gives neither. The text is
// remote input: the parser reads it, never trusts its length or bytes, and
// allocates nothing.
#pragma once

#include <cstdint>
#include <string_view>

namespace mtalog {

struct SmtpReply {
    std::uint16_t code = 0;    // 200 to 599; 0: none found
    std::uint8_t klass = 0;    // enhanced status class: 2, 4 or 5; 0: none found
    std::uint16_t subject = 0; // 0 to 999
    std::uint16_t detail = 0;  // 0 to 999

    [[nodiscard]] bool has_code() const noexcept { return code != 0; }
    [[nodiscard]] bool has_status() const noexcept { return klass != 0; }
};

// Where in `text` the reply is found, in this order:
// 1. a code at the start of the text (after blanks), and a status right after
//    it ("550 5.1.1", "550-5.1.1") or else anywhere in the text;
// 2. a code and status together anywhere ("...: 550-5.7.1 ..."), the status
//    of the code's class;
// 3. a code after ": " ("said: 554 ...", followed by a blank or '-');
// 4. a status alone anywhere, between blanks or punctuation (no code).
// Codes are 2xx to 5xx with a second digit 0 to 5; a status's class is 2, 4
// or 5, its subject and detail one to three digits.
[[nodiscard]] SmtpReply parse_smtp_reply(std::string_view text) noexcept;

} // namespace mtalog
