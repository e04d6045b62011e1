/**
 * The `nginx-config` probe kind: the configuration an nginx master has in force, followed for one
 * request (the limit_req there). Its executable is compared with the image's file.
 */
import { defineKind } from '../probe-kind.js';
import { NginxConfigParamsSchema } from './params.js';
import { nginxConfigProbe } from './nginx-config.js';

export const nginxConfigKind = defineKind({
  kind: 'nginx-config',
  params: NginxConfigParamsSchema,
  probe: nginxConfigProbe,
  latencySensitive: false,
  needs: ['image-files'],
});
