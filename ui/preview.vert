/* A quad covering `scale` of the viewport (aspect-correct fit), drawn as a
 * 4-vertex triangle strip with no vertex buffer. */
uniform vec2 scale;
out vec2 tex_coord;

void
main ()
{
  vec2 corner = vec2 (float (gl_VertexID & 1), float ((gl_VertexID >> 1) & 1));
  /* Row 0 of the frame is the top of the image. */
  tex_coord = vec2 (corner.x, 1.0 - corner.y);
  gl_Position = vec4 ((corner * 2.0 - 1.0) * scale, 0.0, 1.0);
}
