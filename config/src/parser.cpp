#include "parser.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <system_error>
#include <vector>

namespace mtacfg {

namespace fs = std::filesystem;

namespace {

enum class Tok { word, string, equals, lbrace, rbrace, end };

struct Token {
    Tok kind = Tok::end;
    std::string text;
    Location where;
};

// In a file of secrets no token's text is shown, only its kind.
std::string describe(const Token &t, bool secret)
{
    switch (t.kind) {
    case Tok::word: return secret ? "a word" : "'" + t.text + "'";
    case Tok::string: return secret ? "a quoted value" : "\"" + t.text + "\"";
    case Tok::equals: return "'='";
    case Tok::lbrace: return "'{'";
    case Tok::rbrace: return "'}'";
    case Tok::end: return "end of file";
    }
    return "?";
}

// Thrown inside the parser only; parse_file/parse_text turn it into a value.
struct Failure {
    ConfigError error;
};

[[noreturn]] void fail(Location where, std::string message)
{
    throw Failure{ConfigError{std::move(where), std::move(message)}};
}

bool is_word_char(char c) noexcept
{
    switch (c) {
    case ' ': case '\t': case '\r': case '\n': case '\f': case '\v':
    case '#': case '"': case '\'': case '=': case '{': case '}':
    case '[': case ']': case '(': case ')':
        return false;
    default:
        return true;
    }
}

class Lexer {
public:
    Lexer(const std::string &text, std::string file) : text_(text), file_(std::move(file)) {}

    Token next()
    {
        skip_space_and_comments();
        Token t;
        t.where = here();
        if (pos_ >= text_.size())
            return t;
        const char c = text_[pos_];
        switch (c) {
        case '=': advance(); t.kind = Tok::equals; return t;
        case '{': advance(); t.kind = Tok::lbrace; return t;
        case '}': advance(); t.kind = Tok::rbrace; return t;
        case '"': case '\'':
            // A quoted value is located at its first character, so an error
            // at offset N of the value is at column + N.
            t.kind = Tok::string;
            ++t.where.column;
            t.text = quoted(c);
            return t;
        case '[': case ']': case '(': case ')':
            fail(t.where, std::string("unexpected '") + c + "': lists are not supported here; quote the value");
        default: break;
        }
        t.kind = Tok::word;
        while (pos_ < text_.size() && is_word_char(text_[pos_]) && !starts_comment())
            t.text += advance();
        return t;
    }

private:
    Location here() const { return Location{file_, line_, column_}; }

    char advance()
    {
        const char c = text_[pos_++];
        if (c == '\n') {
            ++line_;
            column_ = 1;
        } else {
            ++column_;
        }
        return c;
    }

    bool starts_comment() const
    {
        return pos_ + 1 < text_.size() && text_[pos_] == '/' && text_[pos_ + 1] == '*';
    }

    void skip_space_and_comments()
    {
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
                advance();
            } else if (c == '#') {
                while (pos_ < text_.size() && text_[pos_] != '\n')
                    advance();
            } else if (starts_comment()) {
                const Location start = here();
                advance();
                advance();
                for (;;) {
                    if (pos_ >= text_.size())
                        fail(start, "unterminated comment: '/*' has no matching '*/'");
                    if (text_[pos_] == '*' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
                        advance();
                        advance();
                        break;
                    }
                    advance();
                }
            } else {
                return;
            }
        }
    }

    std::string quoted(char quote)
    {
        const Location start = here();
        advance();
        std::string out;
        for (;;) {
            if (pos_ >= text_.size() || text_[pos_] == '\n')
                fail(start, std::string("unterminated string: missing closing ") + quote);
            const char c = advance();
            if (c == quote)
                return out;
            if (c == '\\' && quote == '"' && pos_ < text_.size() &&
                (text_[pos_] == '"' || text_[pos_] == '\\')) {
                out += advance();
                continue;
            }
            out += c;
        }
    }

    const std::string &text_;
    std::string file_;
    std::size_t pos_ = 0;
    int line_ = 1;
    int column_ = 1;
};

class Parser {
public:
    Parser(std::vector<std::string> include_stack, bool secrets)
        : include_stack_(std::move(include_stack)), secrets_(secrets)
    {
    }

    void parse(const std::string &text, const std::string &file, Document &doc)
    {
        Lexer lexer(text, file);
        parse_items(lexer, doc.options, doc.blocks, nullptr);
    }

private:
    void parse_items(Lexer &lexer, std::vector<Option> &options,
                     std::vector<Block> &blocks, const Block *open_block)
    {
        for (;;) {
            Token tok = lexer.next();
            if (tok.kind == Tok::end) {
                if (open_block)
                    fail(open_block->where, "unterminated block '" + open_block->kind + "': missing '}'");
                return;
            }
            if (tok.kind == Tok::rbrace) {
                if (open_block)
                    return;
                fail(tok.where, "unexpected '}' with no open block");
            }
            if (tok.kind != Tok::word)
                fail(tok.where, std::string(secrets_ ? "expected an option name" : "expected an option or block name") +
                                    ", found " + describe(tok, secrets_));

            Token second = lexer.next();
            if (second.kind == Tok::equals) {
                Token value = lexer.next();
                if (value.kind != Tok::word && value.kind != Tok::string)
                    fail(value.where, "expected a value after '" + (secrets_ ? std::string() : tok.text + " ") +
                                          "=', found " + describe(value, secrets_));
                options.push_back(Option{tok.text, tok.where, value.text, value.where});
            } else if (secrets_) {
                // Only `name = value` belongs in such a file, and the likely
                // slip is a missing '=': said here, where it is missing.
                fail(second.where, "expected '=' after the option name, found " + describe(second, secrets_));
            } else if (second.kind == Tok::lbrace) {
                open_nested(lexer, blocks, tok, std::nullopt);
            } else if (second.kind == Tok::word || second.kind == Tok::string) {
                if (iequals(tok.text, "include")) {
                    include(second, options, blocks);
                    continue;
                }
                Token third = lexer.next();
                if (third.kind != Tok::lbrace)
                    fail(third.where, "expected '{' after '" + tok.text + " " + second.text + "', found " +
                                          describe(third, secrets_));
                open_nested(lexer, blocks, tok, second.text);
            } else {
                fail(second.where, "expected '=' or '{' after '" + tok.text + "', found " + describe(second, secrets_));
            }
        }
    }

    void open_nested(Lexer &lexer, std::vector<Block> &blocks, const Token &kind,
                     std::optional<std::string> instance)
    {
        Block block;
        block.kind = kind.text;
        block.instance = std::move(instance);
        block.where = kind.where;
        parse_items(lexer, block.options, block.blocks, &block);
        blocks.push_back(std::move(block));
    }

    void include(const Token &path_tok, std::vector<Option> &options, std::vector<Block> &blocks)
    {
        fs::path path(path_tok.text);
        if (path.is_relative())
            path = fs::path(path_tok.where.file).parent_path() / path;
        std::error_code ec;
        const auto status = fs::status(path, ec);
        if (ec || !fs::exists(status))
            fail(path_tok.where, "cannot include \"" + path_tok.text + "\": no such file or directory");
        std::vector<fs::path> files;
        if (fs::is_directory(status)) {
            for (const auto &entry : fs::directory_iterator(path, ec)) {
                const auto name = entry.path().filename().string();
                if (!name.empty() && name[0] != '.' && entry.is_regular_file())
                    files.push_back(entry.path());
            }
            if (ec)
                fail(path_tok.where, "cannot read directory \"" + path_tok.text + "\": " + ec.message());
            std::sort(files.begin(), files.end());
        } else if (fs::is_regular_file(status)) {
            files.push_back(path);
        } else {
            fail(path_tok.where, "cannot include \"" + path_tok.text + "\": not a regular file");
        }
        for (const auto &file : files) {
            const auto canonical = fs::weakly_canonical(file, ec).string();
            if (std::find(include_stack_.begin(), include_stack_.end(), canonical) != include_stack_.end())
                fail(path_tok.where, "include loop: \"" + file.string() + "\" is already being read");
            std::ifstream in(file, std::ios::binary);
            if (!in)
                fail(path_tok.where, "cannot read \"" + file.string() + "\"");
            std::stringstream text;
            text << in.rdbuf();
            include_stack_.push_back(canonical);
            Document sub;
            parse(text.str(), file.string(), sub);
            include_stack_.pop_back();
            for (auto &o : sub.options)
                options.push_back(std::move(o));
            for (auto &b : sub.blocks)
                blocks.push_back(std::move(b));
        }
    }

    std::vector<std::string> include_stack_;
    bool secrets_;
};

ParseResult run(const std::string &text, const std::string &name, std::vector<std::string> stack, bool secrets)
{
    try {
        Document doc;
        Parser parser(std::move(stack), secrets);
        parser.parse(text, name, doc);
        return doc;
    } catch (const Failure &f) {
        return f.error;
    }
}

} // namespace

ParseResult parse_text(const std::string &text, const std::string &name)
{
    return run(text, name, {}, false);
}

ParseResult parse_secrets(const std::string &text, const std::string &name)
{
    return run(text, name, {}, true);
}

ParseResult parse_file(const std::string &path)
{
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) // not a directory, a FIFO or a device either
        return ConfigError{Location{path, 0, 0}, "cannot read config file"};
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return ConfigError{Location{path, 0, 0}, "cannot read config file"};
    std::stringstream text;
    text << in.rdbuf();
    return run(text.str(), path, {fs::weakly_canonical(path, ec).string()}, false);
}

Location value_location(const Location &value_at, std::size_t offset)
{
    Location at = value_at;
    at.column += static_cast<int>(offset);
    std::ifstream in(value_at.file);
    std::string line;
    for (int n = 0; n < value_at.line && std::getline(in, line); ++n) {
    }
    if (!in || value_at.column < 2 || static_cast<std::size_t>(value_at.column - 1) > line.size() ||
        line[static_cast<std::size_t>(value_at.column - 2)] != '"')
        return at; // not read back, or not a double-quoted value: no escapes
    std::size_t source = static_cast<std::size_t>(value_at.column - 1);
    for (std::size_t byte = 0; byte < offset && source < line.size() && line[source] != '"'; ++byte)
        source += line[source] == '\\' && source + 1 < line.size() && (line[source + 1] == '"' || line[source + 1] == '\\')
                      ? 2
                      : 1;
    at.column = static_cast<int>(source) + 1;
    return at;
}

} // namespace mtacfg
