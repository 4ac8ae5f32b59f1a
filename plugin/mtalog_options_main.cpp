// Prints the mtalog option table as the Markdown the README carries:
//   build/config/mtalog-options > table.md
#include <cstdio>

#include "mtalog_options.hpp"

int main()
{
    std::fputs(mtacfg::render_options_markdown().c_str(), stdout);
    return 0;
}
