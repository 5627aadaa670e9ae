/* The main of the NAME_layer_check programs (see rs_layer in CMakeLists.txt): linking a layer's
 * objects with only the layers it may use is the check; the program itself does nothing. */
int main(void) {
  return 0;
}
