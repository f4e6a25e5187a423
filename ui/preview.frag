uniform sampler2D frame;
in vec2 tex_coord;
out vec4 color;

void
main ()
{
  color = vec4 (texture (frame, tex_coord).rgb, 1.0);
}
