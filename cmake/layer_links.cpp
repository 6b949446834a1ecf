// Links one layer's whole archive with only the layers below it (CMakeLists.txt, lethe_links_*):
// an undefined symbol there is a call up the layers.
int main() { return 0; }
